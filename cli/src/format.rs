//! Output of lists as table, JSON, YAML or CSV, and the human forms of times and sizes.

use std::io::{self, Write};
use std::time::Duration;

use chrono::{DateTime, Local, SecondsFormat, TimeZone, Utc};
use clap::ValueEnum;
use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;
use sysc_proto::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Yaml,
    Csv,
}

/// Where a row's cells go: a table is read by people, CSV by programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Table,
    Csv,
}

impl Layout {
    /// A missing value: a dash keeps a table's columns readable, CSV wants an empty field.
    pub fn empty(self) -> &'static str {
        match self {
            Layout::Table => "-",
            Layout::Csv => "",
        }
    }

    /// Several values in one cell: a line each in a table, as a CSV field stays on one line.
    pub fn join(self, values: &[String]) -> String {
        match self {
            Layout::Table if values.is_empty() => self.empty().to_string(),
            Layout::Table => values.join("\n"),
            Layout::Csv => values.join(" "),
        }
    }
}

/// Something `list` verbs print. JSON and YAML use `record`, so both carry the same fields.
pub trait Listing {
    type Record: Serialize;
    const HEADER: &'static [&'static str];

    fn record(&self) -> Self::Record;
    fn cells(&self, layout: Layout) -> Vec<String>;
}

pub fn render<T: Listing>(items: &[T], format: OutputFormat) -> anyhow::Result<String> {
    render_columns(items, format, T::HEADER, T::cells)
}

/// `render` with the table and CSV columns chosen by the caller (`list --columns`); JSON
/// and YAML always carry the whole record.
pub fn render_columns<T: Listing>(
    items: &[T],
    format: OutputFormat,
    header: &[&str],
    cells: impl Fn(&T, Layout) -> Vec<String>,
) -> anyhow::Result<String> {
    Ok(match format {
        OutputFormat::Table => render_table(header, items.iter().map(|item| cells(item, Layout::Table))),
        OutputFormat::Json => {
            let records: Vec<T::Record> = items.iter().map(Listing::record).collect();
            serde_json::to_string_pretty(&records)? + "\n"
        }
        OutputFormat::Yaml => {
            let records: Vec<T::Record> = items.iter().map(Listing::record).collect();
            serde_yaml::to_string(&records)?
        }
        OutputFormat::Csv => render_csv(header, items.iter().map(|item| cells(item, Layout::Csv)))?,
    })
}

fn render_table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut table = Table::new();
    table
        .load_style(presets::UTF8_FULL)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec())
        .add_rows(rows);
    table.to_string() + "\n"
}

fn render_csv(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> anyhow::Result<String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(header)?;
    for row in rows {
        writer.write_record(row)?;
    }
    Ok(String::from_utf8(writer.into_inner()?)?)
}

/// Writes a result to stdout; a closed pipe comes back as an io::Error for main to recognise.
pub fn print(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

fn datetime(ts: &Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).ok()?)
}

/// "YYYY-MM-DD HH:MM:SS" in the local time zone; None for an unset time.
pub fn local_time(ts: Option<&Timestamp>) -> Option<String> {
    ts.and_then(|ts| time_in(ts, &Local))
}

fn time_in<Tz: TimeZone>(ts: &Timestamp, zone: &Tz) -> Option<String>
where
    Tz::Offset: std::fmt::Display,
{
    datetime(ts).map(|t| t.with_timezone(zone).format("%Y-%m-%d %H:%M:%S").to_string())
}

/// RFC 3339 in UTC, for machine-readable output; None for an unset time.
pub fn rfc3339(ts: Option<&Timestamp>) -> Option<String> {
    ts.and_then(datetime)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// How long ago `ts` was, measured against `now`; zero when the clocks disagree.
pub fn elapsed_since(ts: &Timestamp, now: DateTime<Utc>) -> Option<Duration> {
    Some((now - datetime(ts)?).to_std().unwrap_or_default())
}

/// The two largest units are precise enough for an uptime: "2m 13s", "3d 4h".
pub fn humanize_duration(duration: Duration) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let secs = duration.as_secs();
    let Some(first) = UNITS.iter().position(|&(size, _)| secs >= size) else {
        return "0s".to_string();
    };
    let (size, suffix) = UNITS[first];
    let mut text = format!("{}{suffix}", secs / size);
    if let Some(&(next_size, next_suffix)) = UNITS.get(first + 1) {
        let count = secs % size / next_size;
        if count > 0 {
            text += &format!(" {count}{next_suffix}");
        }
    }
    text
}

/// Binary units, as `ls -h` and `du -h` count: "171.2 MiB".
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A SHA-256 in a cell: its first 12 digits for people, as git abbreviates hashes; all
/// of it for programs (CSV).
pub fn fingerprint_cell(layout: Layout, fingerprint: &str) -> String {
    match layout {
        Layout::Table => fingerprint.chars().take(12).collect(),
        Layout::Csv => fingerprint.to_string(),
    }
}

/// A flag in a table or a detail view.
pub fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// CPU time in seconds with one decimal, rounded: "1.3s", "0.0s", "3725.4s".
pub fn cpu_seconds(nanoseconds: u64) -> String {
    const TENTH: u64 = 100_000_000;
    let tenths = nanoseconds / TENTH + u64::from(nanoseconds % TENTH >= TENTH / 2);
    format!("{}.{}s", tenths / 10, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: i64) -> Timestamp {
        Timestamp { seconds, nanos: 0 }
    }

    #[test]
    fn durations_show_two_units() {
        assert_eq!(humanize_duration(Duration::from_secs(0)), "0s");
        assert_eq!(humanize_duration(Duration::from_secs(45)), "45s");
        assert_eq!(humanize_duration(Duration::from_secs(133)), "2m 13s");
        assert_eq!(humanize_duration(Duration::from_secs(3_600)), "1h");
        assert_eq!(humanize_duration(Duration::from_secs(3_725)), "1h 2m");
        assert_eq!(
            humanize_duration(Duration::from_secs(86_400 * 3 + 3_600 * 4 + 59)),
            "3d 4h"
        );
        assert_eq!(humanize_duration(Duration::from_secs(86_400 + 30)), "1d");
    }

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(179_516_211), "171.2 MiB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }

    #[test]
    fn cpu_time_shows_tenths_of_seconds() {
        assert_eq!(cpu_seconds(0), "0.0s");
        assert_eq!(cpu_seconds(49_999_999), "0.0s");
        assert_eq!(cpu_seconds(50_000_000), "0.1s");
        assert_eq!(cpu_seconds(1_299_000_000), "1.3s");
        assert_eq!(cpu_seconds(12_400_000_000), "12.4s");
        assert_eq!(cpu_seconds(3_725_960_000_000), "3726.0s");
        assert_eq!(cpu_seconds(u64::MAX), "18446744073.7s");
    }

    #[test]
    fn times_format_for_people_and_programs() {
        let t = ts(1_714_564_800); // 2024-05-01 12:00:00 UTC
        assert_eq!(time_in(&t, &Utc).as_deref(), Some("2024-05-01 12:00:00"));
        assert_eq!(rfc3339(Some(&t)).as_deref(), Some("2024-05-01T12:00:00Z"));
        assert_eq!(rfc3339(None), None);
        assert_eq!(local_time(None), None);
        assert_eq!(local_time(Some(&t)).map(|s| s.len()), Some(19));
    }

    #[test]
    fn elapsed_time_never_goes_negative() {
        let now = DateTime::from_timestamp(1_000, 0).unwrap();
        assert_eq!(elapsed_since(&ts(867), now), Some(Duration::from_secs(133)));
        assert_eq!(elapsed_since(&ts(2_000), now), Some(Duration::ZERO));
    }
}
