//! The InfluxDB v2 sink, through the influxdb2 crate's write path: `POST /api/v2/write`
//! with line protocol, `org`, `bucket`, `Authorization: Token …`, millisecond precision.
//! Only the write API is used (its Flux query side and `health()` are not: no installable
//! server offers them to test against). Tested against VictoriaMetrics, which accepts the
//! same request.
//!
//! The crate brings reqwest 0.11 / hyper 0.14; it is kept behind [`HistorySink`] so that a
//! small line-protocol writer can replace it without touching the spool. TLS: the crate's
//! `rustls` feature (pure Rust, no system OpenSSL, and the token never crosses a network
//! in clear when the URL is `https://`).

use std::time::Duration;

use influxdb2::api::write::TimestampPrecision;
use influxdb2::models::DataPoint;

use super::{HistorySink, SinkError, SinkPoint};
use crate::history::InfluxConfig;

/// Writes batches to an InfluxDB v2 compatible server.
#[derive(Debug, Clone)]
pub struct InfluxSink {
    client: influxdb2::Client,
    bucket: String,
    timeout: Duration,
}

impl InfluxSink {
    /// A sink for `cfg` (checks the URL; connects lazily).
    pub fn new(cfg: &InfluxConfig) -> Result<InfluxSink, SinkError> {
        // influxdb2 panics on a URL it cannot parse: check it first, with the same parser.
        let url = url::Url::parse(&cfg.url)
            .map_err(|e| SinkError::Config(format!("url {:?}: {e}", cfg.url)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(SinkError::Config(format!(
                "url {:?}: expected http://host:port or https://host:port",
                cfg.url
            )));
        }
        if cfg.bucket.is_empty() {
            return Err(SinkError::Config("bucket is empty".into()));
        }
        let client =
            influxdb2::ClientBuilder::new(cfg.url.as_str(), cfg.org.as_str(), cfg.token.as_str())
                .build()
                .map_err(|e| SinkError::Config(e.to_string()))?;
        Ok(InfluxSink {
            client,
            bucket: cfg.bucket.clone(),
            timeout: Duration::from_millis(cfg.timeout_ms.max(1)),
        })
    }
}

/// The influxdb2 data point of `p`.
pub(crate) fn data_point(p: &SinkPoint) -> Result<DataPoint, SinkError> {
    let mut b = DataPoint::builder(p.measurement.as_str());
    for (k, v) in &p.tags {
        b = b.tag(*k, v.as_str());
    }
    for (k, v) in &p.fields {
        b = b.field(k.as_str(), *v);
    }
    b.timestamp(p.at_ms)
        .build()
        .map_err(|e| SinkError::Other(e.to_string()))
}

fn classify(e: influxdb2::RequestError) -> SinkError {
    match e {
        influxdb2::RequestError::Http { status, text } => {
            SinkError::from_status(status.as_u16(), text)
        }
        influxdb2::RequestError::ReqwestProcessing { source } => {
            if source.is_timeout() {
                SinkError::Timeout(Duration::ZERO)
            } else {
                // Connection refused, reset, or broken mid-request: the server is away.
                SinkError::Unreachable(source.to_string())
            }
        }
        other => SinkError::Other(other.to_string()),
    }
}

impl HistorySink for InfluxSink {
    fn name(&self) -> &'static str {
        "influxdb"
    }

    async fn write(&self, points: &[SinkPoint]) -> Result<(), SinkError> {
        let dps = points
            .iter()
            .map(data_point)
            .collect::<Result<Vec<_>, _>>()?;
        let write = self.client.write_with_precision(
            &self.bucket,
            futures::stream::iter(dps),
            TimestampPrecision::Milliseconds,
        );
        match tokio::time::timeout(self.timeout, write).await {
            Err(_) => Err(SinkError::Timeout(self.timeout)),
            Ok(r) => r.map_err(classify),
        }
    }
}

#[cfg(test)]
mod tests {
    use influxdb2::models::WriteDataPoint;

    use super::*;

    #[test]
    fn a_point_is_written_as_escaped_line_protocol_with_a_millisecond_timestamp() {
        let p = SinkPoint {
            measurement: "door".into(),
            tags: vec![
                ("device", "d 1".into()),
                ("household", "h,1".into()),
                ("room", "厨房=东".into()),
            ],
            fields: vec![("open".into(), 1.0), ("x".into(), 0.5)],
            at_ms: 1_732_435_200_123,
        };
        let mut out = Vec::new();
        data_point(&p)
            .unwrap()
            .write_data_point_to(&mut out)
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "door,device=d\\ 1,household=h\\,1,room=厨房\\=东 open=1,x=0.5 1732435200123\n"
        );
    }

    #[test]
    fn a_url_that_the_client_cannot_use_is_a_configuration_error_not_a_panic() {
        let mut c = InfluxConfig::default();
        for bad in ["", "not a url", "ftp://x", "/api/v2"] {
            c.url = bad.into();
            assert!(
                matches!(InfluxSink::new(&c), Err(SinkError::Config(_))),
                "{bad}"
            );
        }
        c.url = "https://influx.example.invalid:8086".into();
        assert!(InfluxSink::new(&c).is_ok());
    }

    #[test]
    fn http_statuses_map_to_closed_reasons() {
        use crate::history::sink::SinkErrorReason as R;
        let r = |s| SinkError::from_status(s, String::new()).reason();
        assert_eq!(r(400), R::rejected);
        assert_eq!(r(401), R::unauthorized);
        assert_eq!(r(404), R::not_found);
        assert_eq!(r(503), R::server_error);
        assert_eq!(r(429), R::server_error);
        assert_eq!(r(302), R::other);
    }
}
