//! PAX extended header records, encoded and parsed here rather than by tar-rs: its parser
//! splits records at newline bytes, which breaks binary values such as a
//! `security.capability` that happens to contain 0x0a.

const MTIME: &[u8] = b"mtime";
const XATTR: &[u8] = b"SCHILY.xattr.";

/// What an entry's PAX header says about it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Extensions {
    /// Modification time with nanoseconds, when they are not zero.
    pub mtime: Option<(u64, u32)>,
    /// Extended attributes (name, value), in name order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Extensions {
    /// The PAX header content; empty when there is nothing to say.
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some((secs, nanos)) = self.mtime {
            push_record(&mut out, MTIME, format!("{secs}.{nanos:09}").as_bytes());
        }
        for (name, value) in &self.xattrs {
            let mut key = XATTR.to_vec();
            for &b in name {
                match b {
                    b'%' => key.extend_from_slice(b"%25"),
                    b'=' => key.extend_from_slice(b"%3D"),
                    _ => key.push(b),
                }
            }
            push_record(&mut out, &key, value);
        }
        out
    }

    /// Parses a PAX header; records with keys of no interest here are skipped.
    pub(super) fn decode(mut data: &[u8]) -> Result<Extensions, &'static str> {
        let mut ext = Extensions::default();
        while !data.is_empty() {
            let (key, value, rest) = split_record(data).ok_or("malformed pax header")?;
            data = rest;
            if key == MTIME {
                ext.mtime = Some(parse_time(value).ok_or("malformed mtime")?);
            } else if let Some(name) = key.strip_prefix(XATTR) {
                ext.xattrs.push((unescape(name), value.to_vec()));
            }
        }
        Ok(ext)
    }
}

/// Appends "<length> <key>=<value>\n", where the length counts the whole record, itself too.
fn push_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while rest + len.to_string().len() != len {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} ").as_bytes());
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// (key, value, what follows the record)
fn split_record(data: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let space = data.iter().position(|&b| b == b' ')?;
    let digits = &data[..space];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let len: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
    if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
        return None;
    }
    let record = &data[space + 1..len - 1];
    let equals = record.iter().position(|&b| b == b'=')?;
    Some((&record[..equals], &record[equals + 1..], &data[len..]))
}

fn parse_time(value: &[u8]) -> Option<(u64, u32)> {
    let text = std::str::from_utf8(value).ok()?;
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(secs) || !all_digits(frac) || frac.len() > 9 {
        return None;
    }
    let nanos = if frac.is_empty() {
        0
    } else {
        frac.parse::<u32>().ok()? * 10u32.pow(9 - frac.len() as u32)
    };
    Some((secs.parse().ok()?, nanos))
}

fn unescape(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        match &name[i..] {
            [b'%', b'2', b'5', ..] => {
                out.push(b'%');
                i += 3;
            }
            [b'%', b'3', b'D', ..] => {
                out.push(b'=');
                i += 3;
            }
            [b, ..] => {
                out.push(*b);
                i += 1;
            }
            [] => break,
        }
    }
    out
}
