//! File hashing for manifests and cell keys.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::DataError;

/// The sha256 of a file's bytes as 64 lowercase hex digits, read in 64 KiB blocks so large files
/// are never held in memory.
pub fn sha256_file(path: impl AsRef<Path>) -> Result<String, DataError> {
    let path = path.as_ref();
    let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(DataError::io(path, e)),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // Larger than one read block.
        std::fs::write(&p, vec![b'a'; 200_000]).unwrap();
        let whole = hex::encode(Sha256::digest(vec![b'a'; 200_000]));
        assert_eq!(sha256_file(&p).unwrap(), whole);
        let e = sha256_file(dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing: cannot read"), "{e}");
    }
}
