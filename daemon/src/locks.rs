//! Per-key async locks: two requests on one container (or one image) run one after
//! the other, never interleaved; requests on different keys don't wait for each other.
//! Keys are alike when they differ only in case: container names are DNS names, so the
//! creation of Web and of web must not both pass the check that the name is free.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

#[derive(Default)]
pub struct KeyedLocks {
    locks: Mutex<HashMap<String, Weak<AsyncMutex<()>>>>,
}

pub type Guard = OwnedMutexGuard<()>;

impl KeyedLocks {
    pub async fn lock(&self, key: &str) -> Guard {
        self.entry(key).lock_owned().await
    }

    /// The lock if nobody holds it now.
    pub fn try_lock(&self, key: &str) -> Option<Guard> {
        self.entry(key).try_lock_owned().ok()
    }

    fn entry(&self, key: &str) -> Arc<AsyncMutex<()>> {
        let key = key.to_ascii_lowercase();
        let mut locks = self.locks.lock().expect("lock table poisoned");
        locks.retain(|_, weak| weak.strong_count() > 0);
        match locks.get(&key).and_then(Weak::upgrade) {
            Some(lock) => lock,
            None => {
                let lock = Arc::new(AsyncMutex::new(()));
                locks.insert(key, Arc::downgrade(&lock));
                lock
            }
        }
    }

    /// Locks several keys in a fixed order, so two callers can't deadlock.
    pub async fn lock_all(&self, keys: &[&str]) -> Vec<Guard> {
        let mut sorted: Vec<String> = keys.iter().map(|key| key.to_ascii_lowercase()).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let mut guards = Vec::with_capacity(sorted.len());
        for key in sorted {
            guards.push(self.lock(&key).await);
        }
        guards
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn keys_alike_but_for_case_are_one_lock() {
        let locks = KeyedLocks::default();
        let held = locks.try_lock("web").expect("free");
        assert!(locks.try_lock("Web").is_none());
        drop(held);
        // A rename that changes only the case locks its one key once.
        let guards = tokio::time::timeout(Duration::from_secs(1), locks.lock_all(&["web", "WEB"])).await;
        assert_eq!(guards.expect("no deadlock").len(), 1);
    }

    #[tokio::test]
    async fn try_lock_fails_only_while_the_key_is_held() {
        let locks = KeyedLocks::default();
        let held = locks.try_lock("a").expect("free");
        assert!(locks.try_lock("a").is_none());
        assert!(locks.try_lock("b").is_some());
        drop(held);
        assert!(locks.try_lock("a").is_some());
    }

    #[tokio::test]
    async fn same_key_waits_other_key_does_not() {
        let locks = Arc::new(KeyedLocks::default());
        let held = locks.lock("a").await;
        let other = tokio::time::timeout(Duration::from_millis(50), locks.lock("b")).await;
        assert!(other.is_ok(), "another key must not wait");
        let locks2 = locks.clone();
        let waiter = tokio::spawn(async move { locks2.lock("a").await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "the same key must wait");
        drop(held);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
