//! `sysc list` filters, as in `incus list`: a bare word keeps the containers whose names
//! start with it; KEY=VALUE keeps those whose state, name, image or pool, or else config
//! key KEY, has that value. Several filters must all hold.

use sysc_proto::v1::Container;

use crate::list::state_name;

/// What `list` accepts as KEY=VALUE besides config keys.
const FIELDS: &str = "state (or status), name, image, pool";
const STATES: [&str; 4] = ["RUNNING", "STOPPED", "PAUSED", "ERROR"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    /// A bare word: names that start with it.
    NamePrefix(String),
    Name(String),
    /// One of STATES.
    State(String),
    /// The start of the image's label ("debian/bookworm") or of its fingerprint.
    Image(String),
    Pool(String),
    /// A config key's value; "" holds for a key that is not set.
    Config {
        key: String,
        value: String,
    },
}

impl Filter {
    /// Parses one filter argument; a config key is checked later, against the daemon's.
    pub fn parse(arg: &str) -> Result<Self, String> {
        let Some((key, value)) = arg.split_once('=') else {
            return if arg.is_empty() {
                Err("an empty list filter; give a name prefix or KEY=VALUE".into())
            } else {
                Ok(Self::NamePrefix(arg.into()))
            };
        };
        match key {
            "" => Err(format!("list filter {arg:?} has no key before '='")),
            "state" | "status" => {
                let state = value.to_ascii_uppercase();
                if STATES.contains(&state.as_str()) {
                    Ok(Self::State(state))
                } else {
                    Err(format!(
                        "list filter {arg:?}: no such state (states: {})",
                        STATES.map(str::to_ascii_lowercase).join(", ")
                    ))
                }
            }
            "name" => Ok(Self::Name(value.into())),
            "image" => Ok(Self::Image(value.into())),
            "pool" => Ok(Self::Pool(value.into())),
            _ => Ok(Self::Config {
                key: key.into(),
                value: value.into(),
            }),
        }
    }

    /// The config key this filter needs the daemon to know.
    pub fn config_key(&self) -> Option<&str> {
        match self {
            Self::Config { key, .. } => Some(key),
            _ => None,
        }
    }

    pub fn matches(&self, c: &Container) -> bool {
        match self {
            Self::NamePrefix(prefix) => c.name.starts_with(prefix.as_str()),
            Self::Name(name) => c.name == *name,
            Self::State(state) => state_name(c.state) == state,
            Self::Image(start) => {
                c.image.starts_with(start.as_str()) || c.image_fingerprint.starts_with(start.as_str())
            }
            Self::Pool(pool) => c.pool == *pool,
            Self::Config { key, value } => c.config.get(key).map_or("", String::as_str) == value,
        }
    }
}

/// The error for a KEY=VALUE filter whose key is neither a field nor a config key.
pub fn unknown_key(key: &str) -> String {
    format!("unknown list filter key {key}: a filter is a name prefix, or KEY=VALUE with {FIELDS} or a config key")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list::tests::sample_container;

    fn holds(arg: &str) -> bool {
        Filter::parse(arg).unwrap().matches(&sample_container())
    }

    #[test]
    fn a_bare_word_is_a_name_prefix() {
        assert!(holds("web"));
        assert!(holds("web1"));
        assert!(!holds("eb1"));
        assert!(!holds("web12"));
    }

    #[test]
    fn fields_match_their_values() {
        assert!(holds("state=running") && holds("status=RUNNING") && holds("state=Running"));
        assert!(!holds("state=stopped"));
        assert!(holds("name=web1") && !holds("name=web"));
        assert!(holds("image=debian") && holds("image=debian/bookworm") && holds("image=3f2a9c"));
        assert!(!holds("image=alpine"));
        assert!(holds("pool=default") && !holds("pool=fast"));
    }

    #[test]
    fn config_keys_match_their_values_and_unset_is_empty() {
        assert!(holds("boot.autostart=true"));
        assert!(!holds("boot.autostart=false"));
        assert!(holds("limits.memory="));
        assert!(!holds("limits.memory=1GiB"));
        assert_eq!(
            Filter::parse("limits.memory=1GiB").unwrap().config_key(),
            Some("limits.memory")
        );
        assert_eq!(Filter::parse("state=running").unwrap().config_key(), None);
    }

    #[test]
    fn bad_filters_are_refused() {
        assert!(Filter::parse("").unwrap_err().contains("empty"));
        assert!(Filter::parse("=x").unwrap_err().contains("no key"));
        let err = Filter::parse("state=sleeping").unwrap_err();
        assert!(
            err.contains("no such state") && err.contains("running, stopped"),
            "{err}"
        );
    }
}
