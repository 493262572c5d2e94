//! Networks loaded once per process: an SD pipeline, a CLIP or Inception model is shared by
//! every run and every evaluation that names the same files, however many there are.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Slot = Arc<Mutex<Option<Arc<dyn Any + Send + Sync>>>>;

/// Loaded values by key (e.g. `"sd-pipeline:/path/to/model"`). Loading one key blocks only the
/// callers of that key: two runs asking for the same network wait for one load.
#[derive(Default)]
pub struct NetworkCache {
    slots: Mutex<HashMap<String, Slot>>,
}

impl NetworkCache {
    /// The value stored under `key`, loaded by `load` on first use. A failed load is not
    /// cached, so the next caller tries again (and reports the same error).
    ///
    /// # Errors
    /// `load`'s error, or a value of another type under the same key (a bug in a plugin's
    /// choice of keys, named in the message).
    pub fn get_or_load<T: Any + Send + Sync>(
        &self,
        key: &str,
        load: impl FnOnce() -> Result<T, String>,
    ) -> Result<Arc<T>, String> {
        let slot = self
            .slots
            .lock()
            .map_err(|_| "network cache poisoned by a panic".to_string())?
            .entry(key.to_string())
            .or_default()
            .clone();
        let mut value = slot
            .lock()
            .map_err(|_| format!("loading `{key}` panicked earlier"))?;
        if value.is_none() {
            *value = Some(Arc::new(load()?));
        }
        let any = value.clone().expect("just filled");
        any.downcast::<T>().map_err(|_| {
            format!(
                "network cache key `{key}` holds another type than {}",
                std::any::type_name::<T>()
            )
        })
    }

    /// Number of values loaded so far.
    pub fn len(&self) -> usize {
        self.slots.lock().map_or(0, |m| {
            m.values()
                .filter(|s| s.lock().is_ok_and(|v| v.is_some()))
                .count()
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn loads_once_per_key_and_retries_failures() {
        let cache = NetworkCache::default();
        let loads = AtomicUsize::new(0);
        let load = || {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok(vec![1.0f32; 4])
        };
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| cache.get_or_load("net", load).unwrap());
            }
        });
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert!(cache
            .get_or_load::<u8>("bad", || Err("missing".into()))
            .is_err());
        assert_eq!(*cache.get_or_load("bad", || Ok(3u8)).unwrap(), 3);
        assert!(cache.get_or_load::<u8>("net", || Ok(0)).is_err());
        assert_eq!(cache.len(), 2);
    }
}
