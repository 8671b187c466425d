//! Checks of a 5-field cron expression before croner parses it. croner's own errors do not say
//! which field is wrong or what the allowed range is, and it replaces weekday and month names
//! anywhere in the expression, so "MON * * * *" would quietly mean minute 1.

/// One field of a cron expression.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names allowed in place of numbers (upper case).
    names: &'static [&'static str],
    /// Characters allowed besides digits and "*,-/": croner's extensions (L, W, #) and "?".
    extra: &'static str,
    /// Whether croner's "+" prefix is allowed, which makes day of month AND day of week both
    /// have to match instead of either.
    plus_prefix: bool,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

// 7 is Sunday too, as in Vixie cron.
#[rustfmt::skip]
const FIELDS: [Field; 5] = [
    Field { name: "minute",       min: 0, max: 59, names: &[],        extra: "",    plus_prefix: false },
    Field { name: "hour",         min: 0, max: 23, names: &[],        extra: "",    plus_prefix: false },
    Field { name: "day of month", min: 1, max: 31, names: &[],        extra: "LW?", plus_prefix: false },
    Field { name: "month",        min: 1, max: 12, names: &MONTHS,    extra: "",    plus_prefix: false },
    Field { name: "day of week",  min: 0, max: 7,  names: &WEEKDAYS,  extra: "L#?", plus_prefix: true },
];

/// The fields of `expression` if it has five plausible ones; otherwise why not.
pub(super) fn split(expression: &str) -> Result<Vec<&str>, String> {
    let parts: Vec<&str> = expression.split_whitespace().collect();
    if parts.len() != FIELDS.len() {
        return Err(format!(
            "it has {} field{}, not 5 (minute, hour, day of month, month, day of week)",
            parts.len(),
            if parts.len() == 1 { "" } else { "s" }
        ));
    }
    for (field, text) in FIELDS.iter().zip(&parts) {
        field.check(text)?;
    }
    Ok(parts)
}

/// The name of field `index`, for croner's errors about it.
pub(super) fn name(index: usize) -> &'static str {
    FIELDS[index].name
}

impl Field {
    fn check(&self, text: &str) -> Result<(), String> {
        let body = match text.strip_prefix('+') {
            Some(rest) if self.plus_prefix => rest,
            _ => text,
        };
        let letters_allowed = !self.names.is_empty();
        if let Some(bad) = body.chars().find(|&c| {
            !(c.is_ascii_digit()
                || "*,-/".contains(c)
                || self.extra.contains(c.to_ascii_uppercase())
                || (letters_allowed && c.is_ascii_alphabetic()))
        }) {
            return Err(format!(
                "{} {text:?} has a character cron does not allow: {bad:?}",
                self.name
            ));
        }
        for word in body.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| !w.is_empty()) {
            let upper = word.to_ascii_uppercase();
            let single_extra = upper.len() == 1 && self.extra.contains(upper.as_str());
            if !single_extra && !self.names.contains(&upper.as_str()) {
                return Err(format!("{} {text:?} has an unknown name {word:?}", self.name));
            }
        }
        // Steps ("*/15") and nth weekdays ("5#2") are counts, not values of the field: croner
        // checks those.
        for (number, preceded_by) in numbers(body) {
            if matches!(preceded_by, Some('/' | '#')) {
                continue;
            }
            if !number.parse::<u32>().is_ok_and(|n| (self.min..=self.max).contains(&n)) {
                return Err(format!(
                    "{} {number} is out of range {}-{}",
                    self.name, self.min, self.max
                ));
            }
        }
        Ok(())
    }
}

/// Maximal runs of digits, each with the character just before it.
fn numbers(text: &str) -> Vec<(&str, Option<char>)> {
    let mut found = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (c.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                found.push((&text[s..i], text[..s].chars().next_back()));
                start = None;
            }
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_bad_field() {
        let cases = [
            ("61 * * * *", "minute 61 is out of range 0-59"),
            ("* 24 * * *", "hour 24 is out of range 0-23"),
            ("* * 0 * *", "day of month 0 is out of range 1-31"),
            ("* * * 13 *", "month 13 is out of range 1-12"),
            ("* * * * 8", "day of week 8 is out of range 0-7"),
            ("5-99 * * * *", "minute 99 is out of range 0-59"),
            ("99999999999 * * * *", "minute 99999999999 is out of range 0-59"),
            ("MON * * * *", "minute \"MON\" has a character cron does not allow: 'M'"),
            ("* * * MON *", "month \"MON\" has an unknown name \"MON\""),
            (
                "* * * * FRIDAY",
                "day of week \"FRIDAY\" has an unknown name \"FRIDAY\"",
            ),
            (
                "* * * * 1+2",
                "day of week \"1+2\" has a character cron does not allow: '+'",
            ),
            ("* * * * *", ""),
        ];
        for (expression, want) in cases {
            assert_eq!(split(expression).err().unwrap_or_default(), want, "{expression}");
        }
    }

    #[test]
    fn counts_fields() {
        assert_eq!(
            split("* * * *").unwrap_err(),
            "it has 4 fields, not 5 (minute, hour, day of month, month, day of week)"
        );
        assert!(split("hello").unwrap_err().starts_with("it has 1 field,"));
        assert!(split("0 * * * * *").unwrap_err().starts_with("it has 6 fields,"));
    }

    #[test]
    fn finds_numbers_and_what_precedes_them() {
        assert_eq!(
            numbers("1-5/10,5#2"),
            [
                ("1", None),
                ("5", Some('-')),
                ("10", Some('/')),
                ("5", Some(',')),
                ("2", Some('#'))
            ]
        );
    }
}
