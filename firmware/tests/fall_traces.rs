//! Trace readers and the `fall-eval` tool, on the UMAFall excerpts in
//! `tests/fixtures/umafall/` and on synthetic SisFall files.
#![cfg(feature = "std")]

use std::path::{Path, PathBuf};
use std::process::Command;

use anxin_firmware::driver::replay::Replay;
use anxin_firmware::fall::FallConfig;
use anxin_firmware::fall::eval;
use anxin_firmware::fall::trace::{self, Position};

const FALL: &str = "UMAFall_Subject_02_Fall_forwardFall_1_2016-06-13_20-43-52.csv";
const JOG: &str = "UMAFall_Subject_05_ADL_Jogging_3_2016-06-15_21-46-58.csv";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/umafall")
}

fn read_fixture(name: &str) -> trace::Trace {
    let text = std::fs::read_to_string(fixtures().join(name)).expect("fixture");
    trace::read_umafall(name, &text, Position::Chest, 50, true).expect("parse")
}

#[test]
fn the_recorded_forward_fall_is_detected_at_its_impact() {
    let t = read_fixture(FALL);
    assert_eq!(t.label.subject, "02");
    assert!(t.label.is_fall);
    assert_eq!(t.repaired, 0);
    let o = eval::run(&t, &FallConfig::PENDANT).expect("run");
    assert!(o.fall_detected, "{o:?}");
    // the largest |a| of the recording is at 3026 ms
    let at = o.at_ms.expect("impact time");
    assert!((2800..=3100).contains(&at), "{o:?}");
    assert!(o.peak_mg.is_some_and(|p| p > 3000), "{o:?}");
}

#[test]
fn the_recorded_jogging_raises_no_alarm() {
    let t = read_fixture(JOG);
    assert!(!t.label.is_fall);
    let o = eval::run(&t, &FallConfig::PENDANT).expect("run");
    assert!(!o.fall_detected, "{o:?}");
}

#[test]
fn replay_records_round_trip_the_trace() {
    let t = read_fixture(FALL);
    let records = t.to_records();
    let mut r = Replay::new(&records);
    assert_eq!(r.remaining(), t.periods.len());
    for p in &t.periods {
        assert_eq!(r.next_period(), Some(*p));
    }
    assert_eq!(r.next_period(), None);
}

#[test]
fn a_malformed_row_is_reported_with_its_line_number() {
    let text = "% header\n100;1;0.1;0.9;0.1;0;1\n150;2;zero;0.9;0.1;0;1\n";
    let e = trace::read_umafall(FALL, text, Position::Chest, 50, true);
    assert_eq!(e.map(|_| ()), Err(trace::TraceError::BadRow { line: 3 }));
    let e = trace::read_umafall(FALL, "% only a header\n", Position::Chest, 50, true);
    assert_eq!(e.map(|_| ()), Err(trace::TraceError::NoSamples));
}

/// The fixture as another export of the same recording might write it: UTF-8 byte-order
/// mark, the publisher's header without `%`, CRLF line ends, blank and whitespace-only
/// lines, decimal commas, an extra column, an empty `Sample No`, a row of another
/// sensor with a damaged value, and a truncated last line.
fn as_republished(original: &str) -> String {
    let mut out =
        String::from("\u{feff}Universidad de Malaga - ETSI de Telecomunicacion (Spain)\r\n");
    out.push_str("   \r\n");
    out.push_str("TimeStamp; Sample No; X-Axis; Y-Axis; Z-Axis; Sensor Type; Sensor ID;\r\n");
    out.push_str("\r\n");
    for (i, line) in original.lines().filter(|l| !l.starts_with('%')).enumerate() {
        let mut f: Vec<String> = line.split(';').map(str::to_string).collect();
        if i % 7 == 3 {
            f[1].clear();
        }
        let row = f.join(";").replace('.', ",");
        out.push_str(&format!("{row};extra;\r\n"));
        if i % 50 == 10 {
            out.push_str("\t \r\n");
        }
        if i == 20 {
            out.push_str("120;0;0,1;n/a;0,2;0;3\r\n");
        }
    }
    out.push_str("6499;1;0,97");
    out
}

#[test]
fn the_reader_accepts_the_files_as_published_and_as_re_saved() {
    let original = std::fs::read_to_string(fixtures().join(FALL)).expect("fixture");
    let clean = trace::read_umafall(FALL, &original, Position::Chest, 50, true).expect("parse");
    assert_eq!(clean.skipped_rows, 0);
    let messy = as_republished(&original);
    // the unchanged reader refused this at its first line ("unparsable data row")
    let t = trace::read_umafall(FALL, &messy, Position::Chest, 50, true).expect("tolerant parse");
    assert_eq!(t.periods, clean.periods);
    assert_eq!(t.times_ms, clean.times_ms);
    assert_eq!(
        t.skipped_rows, 2,
        "the damaged row and the truncated last line"
    );
    // lone-CR line ends and tabs, as one more editor writes them
    let tabs = original.replace(';', "\t").replace('\n', "\r");
    let t = trace::read_umafall(FALL, &tabs, Position::Chest, 50, true).expect("tabs, CR");
    assert_eq!(t.periods, clean.periods);
    // UTF-16 (a file saved as "Unicode" on Windows), with and without its mark
    let le: Vec<u8> = original.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let with_bom: Vec<u8> = [0xFF, 0xFE].into_iter().chain(le.iter().copied()).collect();
    for bytes in [le, with_bom] {
        let text = trace::decode_text(&bytes);
        let t = trace::read_umafall(FALL, &text, Position::Chest, 50, true).expect("utf-16");
        assert_eq!(t.periods, clean.periods);
    }
    assert_eq!(
        trace::decode_text(b"caf\xe9"),
        "café",
        "Latin-1 stays the default"
    );
}

#[test]
fn the_header_s_sensor_table_and_column_names_are_followed() {
    // this recording numbers the chest SensorTag 2 and puts Sensor ID before the axes
    let text = "%C4:BE:84:70:64:8A; 2; CHEST; SensorTag\n\
                %C4:BE:84:71:A5:02; 1; WAIST; SensorTag\n\
                % TimeStamp; Sensor ID; Sensor Type; X-Axis; Y-Axis; Z-Axis\n\
                100;2;0;0.0;1.0;0.0\n\
                100;1;0;0.5;0.5;0.5\n\
                150;2;0;0.0;0.0;1.0\n";
    let t = trace::read_umafall(FALL, text, Position::Chest, 50, false).expect("parse");
    let mg: Vec<[i16; 3]> = t
        .periods
        .iter()
        .flatten()
        .map(|a| [a.x_mg, a.y_mg, a.z_mg])
        .collect();
    assert_eq!(mg, vec![[0, 1000, 0], [0, 0, 1000]]);
    let t = trace::read_umafall(FALL, text, Position::Waist, 50, false).expect("parse");
    assert_eq!(t.periods.len(), 1);
}

#[test]
fn a_file_of_mostly_unreadable_rows_is_refused_not_emptied() {
    let mut text = String::from("% header\n");
    for i in 0..20 {
        text.push_str(&format!("{};{i};0.1;0.9;0.1;0;1\n", 100 + 50 * i));
    }
    text.push_str("1100;20;zero;0.9;0.1;0;1\n");
    let t = trace::read_umafall(FALL, &text, Position::Chest, 50, true).expect("one bad row in 21");
    assert_eq!(t.skipped_rows, 1);
    for i in 0..5 {
        text.push_str(&format!("{};x;bad;0.9;0.1;0;1\n", 1200 + 50 * i));
    }
    let e = trace::read_umafall(FALL, &text, Position::Chest, 50, true);
    assert_eq!(e.map(|_| ()), Err(trace::TraceError::BadRow { line: 22 }));
}

#[test]
fn sensor_tag_axes_at_8_g_are_flagged_saturated() {
    let text = "100;1;0.1;0.9;0.1;0;1\n150;2;8.0;-7.9999;0.1;0;1\n200;3;7.5;0.9;0.1;0;1\n";
    let t = trace::read_umafall(FALL, text, Position::Chest, 50, false).expect("parse");
    let sat: Vec<bool> = t.periods.iter().flatten().map(|a| a.saturated).collect();
    assert_eq!(sat, vec![false, true, false]);
}

/// SisFall raw lines: ADXL345 counts (256 per g) in the first three columns.
fn sisfall_lines(samples: &[[i32; 3]]) -> String {
    samples
        .iter()
        .map(|[x, y, z]| format!("{x:>6},{y:>6},{z:>6},  -12,  -350,   71,  -680,  -270,   -8;\n"))
        .collect()
}

fn repeat(n: usize, v: [i32; 3]) -> Vec<[i32; 3]> {
    vec![v; n]
}

/// 200 Hz: standing 3 s, a 0.4 s drop at 0.2 g, a 100 ms impact near 3.3 g, lying 6 s.
fn sisfall_fall() -> String {
    let mut s = repeat(600, [0, 256, 0]);
    s.extend(repeat(80, [0, 51, 0]));
    s.extend(repeat(20, [150, 600, 560]));
    s.extend(repeat(1200, [0, 8, 256]));
    sisfall_lines(&s)
}

/// 200 Hz: walking upright for 12 s (|a| swinging 0.6–1.6 g).
fn sisfall_walk() -> String {
    let wave = [256, 333, 410, 333, 256, 205, 154, 205];
    let s: Vec<[i32; 3]> = (0..2400).map(|i| [10, wave[(i / 25) % 8], 20]).collect();
    sisfall_lines(&s)
}

#[test]
fn sisfall_rows_are_averaged_to_the_detector_period_in_milli_g() {
    let text = sisfall_lines(&[[256, -512, 4095]; 10]);
    let t = trace::read_sisfall("D01_SA01_R01.txt", &text, 50).expect("parse");
    assert_eq!(t.label.activity, "D01");
    assert_eq!(t.label.subject, "SA01");
    assert!(!t.label.is_fall);
    assert_eq!(t.periods.len(), 1);
    let a = t.periods[0].expect("sample");
    assert_eq!((a.x_mg, a.y_mg, a.z_mg), (1000, -2000, 15996));
    assert!(a.saturated, "4095 counts is the ADXL345's full scale");
    let e = trace::read_sisfall("D01_SA01_R01.txt", "1,2,3;\n", 50);
    assert_eq!(e.map(|_| ()), Err(trace::TraceError::BadRow { line: 1 }));
}

#[test]
fn a_synthetic_sisfall_fall_is_detected_and_walking_is_not() {
    let fall = trace::read_sisfall("F01_SA01_R01.txt", &sisfall_fall(), 50).expect("parse");
    let walk = trace::read_sisfall("D01_SA01_R01.txt", &sisfall_walk(), 50).expect("parse");
    assert!(
        eval::run(&fall, &FallConfig::PENDANT)
            .expect("run")
            .fall_detected
    );
    assert!(
        !eval::run(&walk, &FallConfig::PENDANT)
            .expect("run")
            .fall_detected
    );
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("anxin-fall-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn fall_eval(args: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_fall-eval"))
        .args(args)
        .output()
        .expect("run fall-eval");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn fall_eval_prints_one_line_per_sisfall_file_then_a_summary() {
    let dir = scratch("sisfall");
    std::fs::create_dir_all(dir.join("SA01")).expect("dir");
    std::fs::write(dir.join("SA01/F01_SA01_R01.txt"), sisfall_fall()).expect("write");
    std::fs::write(dir.join("SA01/D01_SA01_R01.txt"), sisfall_walk()).expect("write");
    std::fs::write(dir.join("Readme.txt"), "not a trace").expect("write");
    let dir_s = dir.to_string_lossy().into_owned();
    let lines = fall_eval(&["--format", "sisfall", "--fixed", &dir_s]);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["file"], "SA01/D01_SA01_R01.txt");
    assert_eq!(lines[0]["fall_detected"], false);
    assert_eq!(lines[1]["file"], "SA01/F01_SA01_R01.txt");
    assert_eq!(lines[1]["fall_detected"], true);
    assert!(
        lines[1]["at_ms"]
            .as_u64()
            .is_some_and(|t| (3300..3600).contains(&t))
    );
    let s = &lines[2];
    assert_eq!(s["summary"], true);
    assert_eq!(s["sensitivity"], 1.0);
    assert_eq!(s["specificity"], 1.0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fall_eval_runs_leave_one_subject_out_on_the_umafall_excerpts() {
    let dir = fixtures().to_string_lossy().into_owned();
    let lines = fall_eval(&["--format", "umafall", "--position", "chest", &dir]);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["file"], FALL);
    assert_eq!(lines[0]["position"], "chest");
    assert_eq!(lines[1]["file"], JOG);
    let s = &lines[2];
    assert_eq!(s["mode"], "leave-one-subject-out");
    assert_eq!(s["positions"], serde_json::json!(["chest"]));
    assert_eq!(s["folds"].as_array().map(Vec::len), Some(2));
    assert!(s["per_activity"].as_array().is_some_and(|a| a.len() == 2));
    // 6.65 s of jogging, no alarm: 0 per hour, exact Poisson bound 3.689 / 0.00185 h
    assert_eq!(s["false_alarms_per_hour"], 0.0);
    let hi = s["false_alarms_per_hour_ci"][1]
        .as_f64()
        .expect("upper bound");
    assert!((hi - 3.689 / (6.65 / 3600.0)).abs() < 5.0, "{hi}");
}

#[test]
fn fall_eval_prints_the_table_with_every_position_tried() {
    let dir = fixtures().to_string_lossy().into_owned();
    let out = Command::new(env!("CARGO_BIN_EXE_fall-eval"))
        .args(["--table", "--stress", &dir])
        .output()
        .expect("run fall-eval");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // the excerpts hold chest rows only: the waist is skipped, not invented
    assert!(
        text.contains("positions chest+waist — 2 traces (2 skipped)"),
        "{text}"
    );
    assert!(
        text.contains("| subject 02 chest | 1/1 | 100.0 % |"),
        "{text}"
    );
    assert!(text.contains("| **all pooled** | 1/1 |"), "{text}");
    assert!(text.contains("| slowed x1.5 chest |"), "{text}");
    assert!(text.contains("| held out | impact gate mg |"), "{text}");
}

/// 10 s at 200 Hz (5 ms, with the phone's bursts of equal time stamps): 1 g on z plus a
/// 2 Hz swing of 300 mg and a 15 Hz one of 500 mg (above the 10 Hz Nyquist frequency
/// of 20 Hz).
fn phone_rows() -> Vec<(u64, [f64; 3])> {
    (0..2000u64)
        .map(|i| {
            let t = i as f64 * 0.005;
            let slow = 0.3 * (2.0 * std::f64::consts::PI * 2.0 * t).sin();
            let fast = 0.5 * (2.0 * std::f64::consts::PI * 15.0 * t).sin();
            // time stamps rounded down to 10 ms for the first second: bursts
            let ms = if i < 200 { i * 5 / 10 * 10 } else { i * 5 };
            (ms, [0.0, 0.0, 1.0 + slow + fast])
        })
        .collect()
}

#[test]
fn the_phone_is_low_pass_filtered_before_it_is_resampled() {
    let rows = phone_rows();
    let sat = vec![false; rows.len()];
    let (p, t) = trace::resample(&rows, &sat, 50);
    assert!((195..=201).contains(&p.len()), "{}", p.len());
    assert_eq!(t[1] - t[0], 50);
    // compare with what the 2 Hz part alone would give, away from the edges
    let mut worst = 0.0f64;
    for (a, ms) in p.iter().zip(&t).skip(40).take(100) {
        let a = a.expect("no gap");
        let s = *ms as f64 / 1000.0;
        let want = 1000.0 + 300.0 * (2.0 * std::f64::consts::PI * 2.0 * s).sin();
        worst = worst.max((f64::from(a.z_mg) - want).abs());
    }
    // the 15 Hz swing is gone (±500 mg would alias to a 5 Hz swing), the 2 Hz one kept
    assert!(worst < 40.0, "largest error {worst} mg");
    // taking every tenth row instead would have kept most of the 15 Hz swing
    let naive = rows.iter().skip(400).step_by(10).take(100).map(|(ms, v)| {
        let s = *ms as f64 / 1000.0;
        (1000.0 * v[2] - 1000.0 - 300.0 * (2.0 * std::f64::consts::PI * 2.0 * s).sin()).abs()
    });
    assert!(naive.fold(0.0f64, f64::max) > 200.0);
}

#[test]
fn the_phone_position_is_read_through_the_resampler() {
    let mut text =
        String::from("% TimeStamp; Sample No; X-Axis; Y-Axis; Z-Axis; Sensor Type; Sensor ID;\n");
    for (i, (ms, v)) in phone_rows().iter().enumerate() {
        text.push_str(&format!("{ms};{i};{};{};{};0;0\n", v[0], v[1], v[2]));
    }
    let t = trace::read_umafall(FALL, &text, Position::Pocket, 40, true).expect("parse");
    assert_eq!(t.position, "pocket");
    assert_eq!(t.period_ms, 40);
    assert!(
        (245..=251).contains(&t.periods.len()),
        "10 s at 25 Hz: {}",
        t.periods.len()
    );
}

#[test]
fn fall_eval_refuses_a_bad_command_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_fall-eval"))
        .args(["--format", "csv", "x"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}
