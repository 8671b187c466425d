//! A container's security policy from its keys, as the API reports a bad combination.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::security::{SecurityError, SecurityPolicy};

pub(super) fn policy(config: &BTreeMap<String, String>) -> Result<SecurityPolicy> {
    SecurityPolicy::from_config(config).map_err(|e| match e {
        SecurityError::Invalid(message) => Error::InvalidArgument(message),
        other => Error::Internal(other.to_string()),
    })
}
