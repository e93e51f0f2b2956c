//! Pieces the client commands share: the connection flag, `key=value` parsing, errors.

use clap::Args;
use fjord_client::{Admin, AdminConfig};

/// The error every command returns; `main` prints it as `fjord: <message>`.
pub(crate) type CliError = Box<dyn std::error::Error + Send + Sync>;
/// The result of a command.
pub(crate) type CliResult<T = ()> = Result<T, CliError>;

/// Where the cluster is.
#[derive(Args, Clone, Debug)]
pub(crate) struct Connection {
    /// The broker(s) to bootstrap from, host:port[,host:port...].
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9092")]
    pub(crate) bootstrap_server: String,
}

impl Connection {
    pub(crate) fn admin(&self) -> CliResult<Admin> {
        Ok(Admin::new(AdminConfig::new(self.bootstrap_server.clone()))?)
    }
}

/// Splits `key=value`; the value may itself contain `=`.
pub(crate) fn parse_key_value(s: &str) -> CliResult<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected key=value, got '{s}'").into()),
    }
}

/// Splits a comma-separated `k=v,k=v` list (Kafka's `--add-config` form).
pub(crate) fn parse_key_value_list(s: &str) -> CliResult<Vec<(String, String)>> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| parse_key_value(p.trim()))
        .collect()
}

/// Prints rows as left-aligned columns, as Kafka's tools do.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.len());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$} ", w = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Parses an ISO-8601 date-time (`2024-01-31T12:00:00`, optional `.sss`, `Z` or `±HH:MM`;
/// UTC when no zone is given) to epoch milliseconds.
pub(crate) fn parse_datetime_ms(s: &str) -> CliResult<i64> {
    let bad = || -> CliError {
        format!("invalid date-time '{s}' (want YYYY-MM-DDTHH:mm:SS[.sss][Z|±HH:MM])").into()
    };
    let (date, rest) = s.split_once('T').ok_or_else(bad)?;
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 {
        return Err(bad());
    }
    let year: i64 = d[0].parse().map_err(|_| bad())?;
    let month: i64 = d[1].parse().map_err(|_| bad())?;
    let day: i64 = d[2].parse().map_err(|_| bad())?;
    // Split off the zone.
    let (time, offset_min) = if let Some(t) = rest.strip_suffix('Z') {
        (t, 0)
    } else if let Some(pos) = rest.rfind(['+', '-']) {
        let (t, z) = rest.split_at(pos);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let z = &z[1..];
        let (h, m) = z.split_once(':').unwrap_or((z, "0"));
        let h: i64 = h.parse().map_err(|_| bad())?;
        let m: i64 = m.parse().map_err(|_| bad())?;
        (t, sign * (h * 60 + m))
    } else {
        (rest, 0)
    };
    let (hms, millis) = match time.split_once('.') {
        Some((hms, frac)) => {
            let frac3: String = frac.chars().chain("000".chars()).take(3).collect();
            (hms, frac3.parse::<i64>().map_err(|_| bad())?)
        }
        None => (time, 0),
    };
    let t: Vec<&str> = hms.split(':').collect();
    if t.len() < 2 || t.len() > 3 {
        return Err(bad());
    }
    let hour: i64 = t[0].parse().map_err(|_| bad())?;
    let minute: i64 = t[1].parse().map_err(|_| bad())?;
    let second: i64 = match t.get(2) {
        Some(x) => x.parse().map_err(|_| bad())?,
        None => 0,
    };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Ok(secs * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes() {
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:00").ok(), Some(0));
        assert_eq!(
            parse_datetime_ms("2024-02-29T12:30:15.250Z").ok(),
            Some(1_709_209_815_250)
        );
        assert_eq!(
            parse_datetime_ms("2024-02-29T14:30:15.250+02:00").ok(),
            Some(1_709_209_815_250)
        );
        assert!(parse_datetime_ms("yesterday").is_err());
    }

    #[test]
    fn key_values() {
        assert_eq!(
            parse_key_value("a=b=c").ok(),
            Some(("a".to_string(), "b=c".to_string()))
        );
        assert!(parse_key_value("=x").is_err());
        assert_eq!(
            parse_key_value_list("a=1,b=2").map(|v| v.len()).ok(),
            Some(2)
        );
    }
}
