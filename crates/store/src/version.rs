//! The store's layout version (`layout.json` at its root): a store written by another layout is
//! refused with one message, never misread.

use serde::{Deserialize, Serialize};

use crate::{Result, Store, StoreError, layout};

/// `layout.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutFile {
    pub version: u32,
}

impl Store {
    /// The layout version the store was written in: `layout.json`'s, else 1 when keys of layout 1
    /// (`cells/`) are there, else `None` (an empty or new store).
    pub fn layout_version(&self) -> Result<Option<u32>> {
        if let Some(bytes) = self.get_opt(layout::LAYOUT_FILE)? {
            let file: LayoutFile =
                serde_json::from_slice(&bytes).map_err(|source| StoreError::Parse {
                    key: layout::LAYOUT_FILE.into(),
                    source,
                })?;
            return Ok(Some(file.version));
        }
        if self.has_prefix(layout::LEGACY_PREFIX)? {
            return Ok(Some(1));
        }
        Ok(None)
    }

    /// An error unless the store is in this code's layout ([`layout::LAYOUT_VERSION`]) or holds
    /// nothing of any layout yet. Readers (the worker, the report) call this.
    pub fn check_layout(&self) -> Result<()> {
        match self.layout_version()? {
            None => Ok(()),
            Some(v) if v == layout::LAYOUT_VERSION => Ok(()),
            Some(found) => Err(self.layout_error(found)),
        }
    }

    /// [`Store::check_layout`], then writes `layout.json` when it is missing. Writers (the
    /// executors, before they upload anything) call this.
    pub fn ensure_layout(&self) -> Result<()> {
        self.check_layout()?;
        if !self.exists(layout::LAYOUT_FILE)? {
            let json = serde_json::to_vec(&LayoutFile {
                version: layout::LAYOUT_VERSION,
            })
            .expect("a layout file serialises");
            self.put_new(layout::LAYOUT_FILE, json)?;
        }
        Ok(())
    }

    fn layout_error(&self, found: u32) -> StoreError {
        let what = if found == 1 {
            "layout 1 (`cells/<key>/`: one key for training, sampling and judging together)"
                .to_string()
        } else {
            format!("layout {found}")
        };
        StoreError::Layout {
            url: self.url().to_string(),
            reason: format!(
                "the store holds {what}, and this emorg reads and writes layout {} (`units/`, \
                 `variants/`, `judgments/`). No migration exists: a layout-1 cell's key mixed its \
                 training with its evaluation, so its outputs cannot be re-keyed without \
                 re-running. Point `[store] url` (or --set store.url=...) at a new store and run \
                 the sweep again; keep the old store for the old emorg's reports",
                layout::LAYOUT_VERSION
            ),
        }
    }

    /// Whether any key lies under `prefix` (reads the first listed entry only).
    fn has_prefix(&self, prefix: &str) -> Result<bool> {
        use futures::StreamExt;
        let path = crate::obj_path(prefix.trim_matches('/'))?;
        let first = self.block_on(async {
            let mut stream = self.backend().list(Some(&path));
            stream.next().await.transpose()
        });
        match first {
            Ok(found) => Ok(found.is_some()),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(StoreError::backend(prefix, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stores() -> (tempfile::TempDir, Vec<Store>) {
        let dir = tempfile::tempdir().unwrap();
        let file = Store::open(&format!("file://{}", dir.path().join("store").display())).unwrap();
        (dir, vec![file, Store::open("memory://").unwrap()])
    }

    fn layout_reason(err: StoreError, store: &Store) -> String {
        match err {
            StoreError::Layout { url, reason } => {
                assert_eq!(url, store.url());
                reason
            }
            other => panic!("expected a layout error, got {other:?}"),
        }
    }

    #[test]
    fn a_new_store_gets_layout_json_from_ensure_layout() {
        let (_dir, stores) = stores();
        for store in &stores {
            assert_eq!(store.layout_version().unwrap(), None);
            store.ensure_layout().unwrap();
            let json: serde_json::Value = store.get_json(layout::LAYOUT_FILE).unwrap();
            assert_eq!(json, serde_json::json!({"version": 2}), "{}", store.url());
            assert_eq!(
                store.layout_version().unwrap(),
                Some(layout::LAYOUT_VERSION)
            );
            store.check_layout().unwrap();
            // A second writer finds it and leaves it as it is.
            let before = store.get(layout::LAYOUT_FILE).unwrap();
            store.ensure_layout().unwrap();
            assert_eq!(store.get(layout::LAYOUT_FILE).unwrap(), before);
            assert_eq!(store.list("").unwrap(), vec![layout::LAYOUT_FILE]);
        }
    }

    #[test]
    fn an_empty_store_passes_check_layout_without_writing_anything() {
        let (dir, stores) = stores();
        for store in &stores {
            store.check_layout().unwrap();
            assert!(store.list("").unwrap().is_empty(), "{}", store.url());
        }
        assert_eq!(
            std::fs::read_dir(dir.path().join("store")).unwrap().count(),
            0
        );
        // Keys of this layout without a layout.json (a writer before ensure_layout ran) are no
        // layout 1: readers pass, and a writer adds the file.
        let store = &stores[1];
        store.put("inputs/datasets/ab.jsonl", "{}\n").unwrap();
        store.put("units/k/unit.json", "{}").unwrap();
        assert_eq!(store.layout_version().unwrap(), None);
        store.check_layout().unwrap();
        assert!(!store.exists(layout::LAYOUT_FILE).unwrap());
        store.ensure_layout().unwrap();
        assert_eq!(store.layout_version().unwrap(), Some(2));
    }

    #[test]
    fn a_store_in_layout_1_is_refused_with_what_to_do() {
        let (_dir, stores) = stores();
        for store in &stores {
            store.put("cells/x/cell.json", "{}").unwrap();
            assert_eq!(store.layout_version().unwrap(), Some(1));
            let reason = layout_reason(store.check_layout().unwrap_err(), store);
            for part in [
                "layout 1",
                "cells/<key>/",
                "layout 2",
                "No migration exists",
                "new store",
                "[store] url",
                "--set store.url=",
            ] {
                assert!(reason.contains(part), "{part} in {reason}");
            }
            // The writer is refused the same way and writes nothing.
            let err = store.ensure_layout().unwrap_err();
            let msg = err.to_string();
            assert_eq!(layout_reason(err, store), reason);
            assert!(
                msg.contains(store.url()) && msg.contains("another layout"),
                "{msg}"
            );
            assert!(!store.exists(layout::LAYOUT_FILE).unwrap());
            assert_eq!(store.list("").unwrap(), vec!["cells/x/cell.json"]);
        }
    }

    #[test]
    fn only_the_cells_prefix_itself_marks_layout_1() {
        let store = Store::open("memory://").unwrap();
        store.put("cellsx/a.json", "{}").unwrap();
        store.put("reports/cells/a.md", "#").unwrap();
        store.put("units/k/cells/a.json", "{}").unwrap();
        assert_eq!(store.layout_version().unwrap(), None);
        store.check_layout().unwrap();
        // layout.json decides when it is there, whatever else the store holds.
        store.put("cells/x/cell.json", "{}").unwrap();
        assert_eq!(store.layout_version().unwrap(), Some(1));
        store.put(layout::LAYOUT_FILE, r#"{"version":2}"#).unwrap();
        assert_eq!(store.layout_version().unwrap(), Some(2));
        store.check_layout().unwrap();
    }

    #[test]
    fn a_store_of_another_layout_version_is_refused_naming_it() {
        let (_dir, stores) = stores();
        for store in &stores {
            store.put(layout::LAYOUT_FILE, r#"{"version": 3}"#).unwrap();
            assert_eq!(store.layout_version().unwrap(), Some(3));
            let reason = layout_reason(store.check_layout().unwrap_err(), store);
            assert!(
                reason.contains("the store holds layout 3")
                    && reason.contains("reads and writes layout 2")
                    && !reason.contains("layout 1"),
                "{reason}"
            );
            let reason2 = layout_reason(store.ensure_layout().unwrap_err(), store);
            assert_eq!(reason2, reason);
            // Not overwritten by the writer.
            assert_eq!(
                &store.get(layout::LAYOUT_FILE).unwrap()[..],
                br#"{"version": 3}"#
            );
        }
    }

    #[test]
    fn a_layout_json_that_does_not_parse_is_an_error_naming_it() {
        let store = Store::open("memory://").unwrap();
        for bad in ["{", r#"{"version": "2"}"#, r#"{"layout": 2}"#, "[]"] {
            store.put(layout::LAYOUT_FILE, bad).unwrap();
            for err in [
                store.layout_version().unwrap_err(),
                store.check_layout().unwrap_err(),
                store.ensure_layout().unwrap_err(),
            ] {
                assert!(
                    matches!(&err, StoreError::Parse { key, .. } if key == layout::LAYOUT_FILE),
                    "{bad}: {err:?}"
                );
            }
            assert_eq!(&store.get(layout::LAYOUT_FILE).unwrap()[..], bad.as_bytes());
        }
    }
}
