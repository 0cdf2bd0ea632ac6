//! Tables in and out of CSV and XLSX: what the exports write and the import reads.
//!
//! CSV is written as UTF-8 with a byte-order mark (so that Excel shows Chinese text
//! right) and read as UTF-8 (with or without the mark) or, failing that, GB18030 (what
//! Excel on a Chinese Windows saves).

use std::io::Cursor;

use calamine::{Data, Reader};
use rust_xlsxwriter::{Format, Workbook};

use super::WorkflowError;

/// A cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text.
    Text(String),
    /// Whole number.
    Int(i64),
    /// Number.
    Float(f64),
    /// Nothing.
    Empty,
}

impl Cell {
    /// Text, or empty when None.
    pub fn opt(s: Option<impl Into<String>>) -> Cell {
        s.map(|s| Cell::Text(s.into())).unwrap_or(Cell::Empty)
    }

    /// A number, or empty when None.
    pub fn opt_f(v: Option<f64>) -> Cell {
        v.map(Cell::Float).unwrap_or(Cell::Empty)
    }

    /// As CSV text (text cells made safe by [`export_text`]).
    pub fn text(&self) -> String {
        match self {
            Cell::Text(s) => export_text(s),
            Cell::Int(i) => i.to_string(),
            Cell::Float(f) => {
                if f.fract() == 0.0 && f.abs() < 1e15 {
                    format!("{}", *f as i64)
                } else {
                    format!("{f:.4}")
                }
            }
            Cell::Empty => String::new(),
        }
    }
}

/// Excel's limit on the characters of one cell.
pub const EXCEL_CELL_MAX_CHARS: usize = 32_767;

/// What ends a text cell cut at [`EXCEL_CELL_MAX_CHARS`].
pub const TRUNCATED_MARKER: &str = "…[truncated]";

/// The one rule for text in exported cells, CSV and XLSX alike:
///
/// - text that a spreadsheet would read as a formula (it starts with `=`, `+`, `-`,
///   `@`, a tab or a carriage return) is prefixed with a single quote, as OWASP's
///   advice on CSV injection says, so that a note `=HYPERLINK(…)` stays a note;
///   numbers are [`Cell::Int`] / [`Cell::Float`] and are written as numbers, so a
///   negative number in a numeric column stays a number;
/// - text longer than Excel's cell limit is cut there and ends with
///   [`TRUNCATED_MARKER`], so that an export never fails on one long record.
pub fn export_text(s: &str) -> String {
    let risky = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let prefix = if risky { "'" } else { "" };
    let budget = EXCEL_CELL_MAX_CHARS - prefix.chars().count();
    if s.chars().count() <= budget {
        return format!("{prefix}{s}");
    }
    let keep = budget - TRUNCATED_MARKER.chars().count();
    let mut out = String::with_capacity(s.len().min(budget * 4));
    out.push_str(prefix);
    out.extend(s.chars().take(keep));
    out.push_str(TRUNCATED_MARKER);
    out
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Text(s.to_string())
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Text(s)
    }
}

impl From<i64> for Cell {
    fn from(v: i64) -> Self {
        Cell::Int(v)
    }
}

/// A named table: a header row and data rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Sheet name (XLSX).
    pub name: String,
    /// Column names.
    pub headers: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table.
    pub fn new(name: &str, headers: &[&str]) -> Table {
        Table {
            name: name.to_string(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: vec![],
        }
    }
}

/// CSV bytes of `t` (UTF-8 with BOM).
pub fn to_csv(t: &Table) -> Result<Vec<u8>, WorkflowError> {
    let mut out = vec![0xEF, 0xBB, 0xBF];
    {
        let mut w = csv::Writer::from_writer(&mut out);
        w.write_record(&t.headers)
            .map_err(|e| WorkflowError::File(e.to_string()))?;
        for r in &t.rows {
            w.write_record(r.iter().map(Cell::text))
                .map_err(|e| WorkflowError::File(e.to_string()))?;
        }
        w.flush().map_err(|e| WorkflowError::File(e.to_string()))?;
    }
    Ok(out)
}

/// XLSX bytes with one sheet per table.
pub fn to_xlsx(tables: &[Table]) -> Result<Vec<u8>, WorkflowError> {
    let err = |e: rust_xlsxwriter::XlsxError| WorkflowError::File(e.to_string());
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    for t in tables {
        let ws = wb.add_worksheet();
        ws.set_name(&t.name).map_err(err)?;
        for (c, h) in t.headers.iter().enumerate() {
            let col = u16::try_from(c).unwrap_or(u16::MAX);
            ws.write_string_with_format(0, col, h, &bold).map_err(err)?;
            ws.set_column_width(col, (h.chars().count() as f64 * 2.0).clamp(10.0, 40.0))
                .map_err(err)?;
        }
        for (r, row) in t.rows.iter().enumerate() {
            let rr = u32::try_from(r + 1).unwrap_or(u32::MAX);
            for (c, cell) in row.iter().enumerate() {
                let col = u16::try_from(c).unwrap_or(u16::MAX);
                match cell {
                    Cell::Text(s) => {
                        ws.write_string(rr, col, export_text(s)).map_err(err)?;
                    }
                    Cell::Int(i) => {
                        ws.write_number(rr, col, *i as f64).map_err(err)?;
                    }
                    Cell::Float(f) => {
                        ws.write_number(rr, col, *f).map_err(err)?;
                    }
                    Cell::Empty => {}
                }
            }
        }
        ws.set_freeze_panes(1, 0).map_err(err)?;
    }
    wb.save_to_buffer().map_err(err)
}

/// Text of `bytes`: UTF-8 (BOM stripped) or GB18030.
pub fn decode_text(bytes: &[u8]) -> String {
    let b = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => encoding_rs::GB18030.decode(b).0.into_owned(),
    }
}

/// Rows of a CSV file (the header row included), as text.
pub fn read_csv(bytes: &[u8]) -> Result<Vec<Vec<String>>, WorkflowError> {
    let text = decode_text(bytes);
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = vec![];
    for rec in r.records() {
        let rec = rec.map_err(|e| WorkflowError::File(format!("CSV: {e}")))?;
        rows.push(rec.iter().map(|s| s.trim().to_string()).collect());
    }
    Ok(rows)
}

fn data_text(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_string(),
        Data::Float(f) => Cell::Float(*f).text(),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) => dt.to_string(),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

/// A sheet as read: its name and its rows of text.
pub type SheetRows = (String, Vec<Vec<String>>);

/// Every sheet of an XLSX file as (name, rows), rows as text.
pub fn read_xlsx(bytes: &[u8]) -> Result<Vec<SheetRows>, WorkflowError> {
    let mut wb: calamine::Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes.to_vec()))
        .map_err(|e| WorkflowError::File(format!("XLSX: {e}")))?;
    let mut out = vec![];
    for name in wb.sheet_names() {
        let range = wb
            .worksheet_range(&name)
            .map_err(|e| WorkflowError::File(format!("XLSX sheet {name}: {e}")))?;
        // Keep the sheet's own row numbers: a sheet that starts below row 1 is
        // padded so that row i of the result is Excel's row i + 1.
        let (first_row, first_col) = range.start().unwrap_or((0, 0));
        let mut rows: Vec<Vec<String>> = vec![vec![]; first_row as usize];
        for r in range.rows() {
            let mut row = vec![String::new(); first_col as usize];
            row.extend(r.iter().map(data_text));
            rows.push(row);
        }
        out.push((name, rows));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_chinese_text_round_trips_and_carries_a_bom() {
        let mut t = Table::new("t", &["户号", "姓名"]);
        t.rows.push(vec!["h1".into(), "王阿姨, 楼上".into()]);
        let bytes = to_csv(&t).unwrap();
        assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]));
        let rows = read_csv(&bytes).unwrap();
        assert_eq!(rows, vec![vec!["户号", "姓名"], vec!["h1", "王阿姨, 楼上"]]);
    }

    #[test]
    fn formula_text_is_neutralised_but_numbers_stay_numbers() {
        let mut t = Table::new("t", &["note", "delta"]);
        t.rows
            .push(vec!["=HYPERLINK(\"http://x\")".into(), Cell::Int(-3)]);
        t.rows.push(vec!["-1+2".into(), Cell::Float(-2.5)]);
        t.rows.push(vec!["\tx".into(), Cell::Empty]);
        let rows = read_csv(&to_csv(&t).unwrap()).unwrap();
        assert_eq!(rows[1], vec!["'=HYPERLINK(\"http://x\")", "-3"]);
        assert_eq!(rows[2], vec!["'-1+2", "-2.5000"]);
        assert_eq!(rows[3][0], "'\tx");
        let sheets = read_xlsx(&to_xlsx(&[t]).unwrap()).unwrap();
        assert_eq!(sheets[0].1[1], vec!["'=HYPERLINK(\"http://x\")", "-3"]);
    }

    #[test]
    fn a_cell_over_excels_limit_is_cut_with_a_marker_and_the_export_succeeds() {
        let mut t = Table::new("t", &["needs"]);
        t.rows
            .push(vec!["需".repeat(EXCEL_CELL_MAX_CHARS * 2).into()]);
        let sheets = read_xlsx(&to_xlsx(&[t]).unwrap()).unwrap();
        let cell = &sheets[0].1[1][0];
        assert_eq!(cell.chars().count(), EXCEL_CELL_MAX_CHARS);
        assert!(cell.ends_with(TRUNCATED_MARKER));
    }

    #[test]
    fn gb18030_csv_is_read_too() {
        let (bytes, _, _) = encoding_rs::GB18030.encode("户号,姓名\nh1,李伯伯\n");
        let rows = read_csv(&bytes).unwrap();
        assert_eq!(rows[1], vec!["h1", "李伯伯"]);
    }

    #[test]
    fn xlsx_round_trips_text_and_whole_numbers() {
        let mut t = Table::new("households", &["household_id", "phone"]);
        t.rows.push(vec!["h1".into(), Cell::Int(13800000000)]);
        let bytes = to_xlsx(&[t]).unwrap();
        let sheets = read_xlsx(&bytes).unwrap();
        assert_eq!(sheets[0].0, "households");
        assert_eq!(sheets[0].1[1], vec!["h1", "13800000000"]);
    }
}
