//! Backup archives of a node's data folder, the same for the sync server
//! and the kiosk: a tar stream compressed with zstd, its files' SHA-256
//! in a manifest written last.
//!
//! Writing goes to `FILE.partial-…` beside the target, is fsynced and then
//! renamed, so a crash never leaves a half archive under the real name.
//! Restoring unpacks into a hidden staging folder beside the target, checks
//! every file against the manifest (no file missing, none extra, none
//! changed, the right kind of node), fsyncs, and only then renames the
//! staging folder into place: a damaged, truncated or foreign archive
//! leaves nothing behind. Entries must be regular files with plain
//! relative paths (no `..`, no absolute paths, no links), so an archive
//! cannot write outside the folder it is restored into. A file that would
//! leave the disk with less than 64 MiB free is refused before it is
//! written.
//!
//! What goes in is the caller's choice: each binary takes a consistent
//! snapshot of its SQLite store first (never the live file and its WAL)
//! and adds the folder's other files (keys, certificates, configuration).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The archive format this build writes and reads.
pub const FORMAT: &str = "loket-backup/1";
const MANIFEST: &str = "manifest.json";
/// More entries than any data folder holds: a bound for hostile archives.
const ENTRIES_MAX: usize = 10_000;
/// The manifest is small; a larger one is not ours.
const MANIFEST_BYTES_MAX: u64 = 4 * 1024 * 1024;
const ZSTD_LEVEL: i32 = 3;
/// Left free on the disk a restore writes to: a file that would take the
/// disk below this is refused before a byte of it is written (a damaged or
/// hostile archive declaring huge files fills nothing).
const FREE_BYTES_KEPT: u64 = 64 * 1024 * 1024;

/// What an archive says about itself (`manifest.json`, the last entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// Which node wrote it: `sync-server` or `kiosk`.
    pub kind: String,
    /// The writing binary's version (`CARGO_PKG_VERSION` and commit).
    pub version: String,
    pub created_at_ms: i64,
    /// Facts the binary records for itself (its store's engine and schema
    /// version, a kiosk's code), shown by `restore`.
    #[serde(default)]
    pub about: BTreeMap<String, String>,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the data folder, `/`-separated.
    pub path: String,
    pub bytes: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// One file to put in an archive: its path inside the archive (and the
/// restored folder) and where to read it now.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: String,
    pub from: PathBuf,
}

/// Every regular file under `dir` (recursively) as a [`Source`], except
/// those `skip` rejects (given the `/`-separated relative path). Symbolic
/// links and other special files are left out.
pub fn folder_files(dir: &Path, skip: &dyn Fn(&str) -> bool) -> anyhow::Result<Vec<Source>> {
    fn walk(root: &Path, dir: &Path, skip: &dyn Fn(&str) -> bool, out: &mut Vec<Source>) -> anyhow::Result<()> {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("reading {}", dir.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let kind = entry.file_type()?;
            let path = entry.path();
            let rel = path.strip_prefix(root).expect("walked under root");
            let Some(rel) = rel.to_str().map(str::to_owned) else {
                bail!("{}: the file name is not UTF-8", path.display());
            };
            if skip(&rel) {
                continue;
            }
            if kind.is_dir() {
                walk(root, &path, skip, out)?;
            } else if kind.is_file() {
                out.push(Source { path: rel, from: path });
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, skip, &mut out)?;
    Ok(out)
}

/// The folder a file path is in (`.` for a bare file name).
pub fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `files` into a new archive at `out` (replacing nothing: an
/// existing `out` is refused). `progress` is called with the bytes written
/// so far.
pub fn write(
    out: &Path,
    kind: &str,
    version: &str,
    about: BTreeMap<String, String>,
    files: &[Source],
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<Manifest> {
    if out.exists() {
        bail!("{} exists already; choose a new file name", out.display());
    }
    let dir = folder_of(out);
    let name = out.file_name().and_then(|n| n.to_str()).context("the backup file needs a name")?;
    let partial = dir.join(format!("{name}.partial-{}", hex::encode(crate::random_bytes::<6>())));
    let result = write_to(&partial, kind, version, about, files, progress);
    match result {
        Ok(manifest) => {
            fs::rename(&partial, out).with_context(|| format!("renaming to {}", out.display()))?;
            File::open(&dir)?.sync_all()?;
            Ok(manifest)
        }
        Err(e) => {
            let _ = fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn write_to(
    partial: &Path,
    kind: &str,
    version: &str,
    about: BTreeMap<String, String>,
    files: &[Source],
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<Manifest> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let encoder = zstd::stream::write::Encoder::new(BufWriter::new(file), ZSTD_LEVEL)?;
    let mut tar = tar::Builder::new(encoder);
    let mut entries = Vec::with_capacity(files.len());
    let mut written = 0u64;
    for source in files {
        check_relative(&source.path)?;
        let file = File::open(&source.from).with_context(|| format!("opening {}", source.from.display()))?;
        let bytes = file.metadata()?.len();
        let mut header = regular_header(bytes);
        let mut reader = Hashing { inner: BufReader::new(file), hash: Sha256::new(), bytes: 0 };
        tar.append_data(&mut header, &source.path, &mut reader)
            .with_context(|| format!("archiving {}", source.from.display()))?;
        if reader.bytes != bytes {
            bail!("{} changed size while it was archived", source.from.display());
        }
        written += bytes;
        progress(written);
        entries.push(FileEntry { path: source.path.clone(), bytes, sha256: hex::encode(reader.hash.finalize()) });
    }
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        kind: kind.to_owned(),
        version: version.to_owned(),
        created_at_ms: crate::now_ms(),
        about,
        files: entries,
    };
    let json = serde_json::to_vec_pretty(&manifest)?;
    let mut header = regular_header(json.len() as u64);
    tar.append_data(&mut header, MANIFEST, json.as_slice())?;
    let encoder = tar.into_inner()?;
    let file = encoder.finish()?.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(manifest)
}

fn regular_header(bytes: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(bytes);
    header.set_mode(0o600);
    header.set_mtime(0);
    header
}

/// Reads an archive's manifest without restoring it (the whole archive is
/// read and checked: a damaged one is an error).
pub fn inspect(from: &Path) -> anyhow::Result<Manifest> {
    read_archive(from, None)
}

/// Restores an archive of `kind` into `into`, which must not exist or be
/// an empty folder. `verify` checks the unpacked folder before it is put
/// in place (a store's own integrity check); an error leaves nothing.
/// Returns the manifest. `progress` is called with the bytes restored so
/// far.
pub fn restore(
    from: &Path,
    into: &Path,
    kind: &str,
    verify: &dyn Fn(&Path) -> anyhow::Result<()>,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<Manifest> {
    if into.exists() {
        let empty = fs::read_dir(into)
            .with_context(|| format!("{} exists and is not a folder", into.display()))?
            .next()
            .is_none();
        if !empty {
            bail!("{} is not empty: restore into a new folder, then swap them", into.display());
        }
    }
    let parent = folder_of(into);
    fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let name = into.file_name().and_then(|n| n.to_str()).context("the data folder needs a name")?;
    let staging = parent.join(format!(".{name}.restoring-{}", hex::encode(crate::random_bytes::<6>())));
    fs::DirBuilder::new().mode(0o700).create(&staging).with_context(|| format!("creating {}", staging.display()))?;
    let unpacked = unpack_into(from, &staging, progress).and_then(|manifest| {
        if manifest.kind != kind {
            bail!("{} is a backup of a {}, not of a {kind}", from.display(), manifest.kind);
        }
        verify(&staging)?;
        Ok(manifest)
    });
    let manifest = match unpacked {
        Ok(m) => m,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    if into.exists() {
        fs::remove_dir(into).with_context(|| format!("replacing the empty {}", into.display()))?;
    }
    fs::rename(&staging, into).with_context(|| format!("moving the restored files to {}", into.display()))?;
    File::open(&parent)?.sync_all()?;
    Ok(manifest)
}

fn unpack_into(from: &Path, staging: &Path, progress: &mut dyn FnMut(u64)) -> anyhow::Result<Manifest> {
    let mut done = 0u64;
    let mut sink = |rel: &str, size: u64, entry: &mut dyn Read| -> anyhow::Result<(u64, String)> {
        let free = free_bytes(staging)?;
        if size.saturating_add(FREE_BYTES_KEPT) > free {
            bail!("{rel} needs {size} bytes and the disk has {free} free (keeping {FREE_BYTES_KEPT})");
        }
        let target = staging.join(rel);
        if let Some(dir) = target.parent() {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&target)
            .with_context(|| format!("creating {}", target.display()))?;
        let mut out = BufWriter::new(file);
        let mut hashing = Hashing { inner: entry, hash: Sha256::new(), bytes: 0 };
        io::copy(&mut hashing, &mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        done += hashing.bytes;
        progress(done);
        Ok((hashing.bytes, hex::encode(hashing.hash.finalize())))
    };
    let manifest = read_archive(from, Some(&mut sink))?;
    // Every folder the files went into, then the staging folder itself.
    let mut dirs: Vec<PathBuf> =
        manifest.files.iter().filter_map(|f| staging.join(&f.path).parent().map(Path::to_path_buf)).collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs.iter().rev() {
        File::open(dir)?.sync_all()?;
    }
    Ok(manifest)
}

/// Takes one file: its path, its declared size, its bytes; returns the
/// bytes it read and their SHA-256 (hex).
type Sink<'a> = dyn FnMut(&str, u64, &mut dyn Read) -> anyhow::Result<(u64, String)> + 'a;

/// Bytes an unprivileged writer may still use on the file system of `dir`.
fn free_bytes(dir: &Path) -> anyhow::Result<u64> {
    let st = rustix::fs::statvfs(dir).with_context(|| format!("reading the free space of {}", dir.display()))?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Reads the whole archive, handing each file to `sink` (or hashing it),
/// and checks the files against the manifest at the end.
fn read_archive(from: &Path, mut sink: Option<&mut Sink<'_>>) -> anyhow::Result<Manifest> {
    let file = File::open(from).with_context(|| format!("opening {}", from.display()))?;
    let decoder = zstd::stream::read::Decoder::new(BufReader::new(file))
        .with_context(|| format!("{} is not a Loket backup (not zstd)", from.display()))?;
    let mut archive = tar::Archive::new(decoder);
    let mut seen: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut manifest: Option<Manifest> = None;
    let not_ours = |why: String| anyhow::anyhow!("{} is damaged or not a Loket backup: {why}", from.display());
    for (n, entry) in archive.entries().map_err(|e| not_ours(e.to_string()))?.enumerate() {
        let mut entry = entry.map_err(|e| not_ours(e.to_string()))?;
        if n >= ENTRIES_MAX {
            return Err(not_ours(format!("more than {ENTRIES_MAX} entries")));
        }
        if manifest.is_some() {
            return Err(not_ours("an entry after the manifest".into()));
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(not_ours(format!("entry {n} is not a regular file")));
        }
        let path = entry.path().map_err(|e| not_ours(e.to_string()))?;
        let Some(rel) = path.to_str().map(str::to_owned) else {
            return Err(not_ours(format!("entry {n} has a name that is not UTF-8")));
        };
        check_relative(&rel).map_err(|e| not_ours(e.to_string()))?;
        if rel == MANIFEST {
            if entry.size() > MANIFEST_BYTES_MAX {
                return Err(not_ours("the manifest is too large".into()));
            }
            let mut json = Vec::new();
            entry.read_to_end(&mut json).map_err(|e| not_ours(e.to_string()))?;
            let m: Manifest =
                serde_json::from_slice(&json).map_err(|e| not_ours(format!("the manifest does not read: {e}")))?;
            if m.format != FORMAT {
                bail!("{} is in format {:?}; this build reads {FORMAT}", from.display(), m.format);
            }
            manifest = Some(m);
            continue;
        }
        if seen.contains_key(&rel) {
            return Err(not_ours(format!("{rel} twice")));
        }
        let got = match sink.as_mut() {
            Some(sink) => {
                let size = entry.size();
                sink(&rel, size, &mut entry).map_err(|e| not_ours(format!("{rel}: {e:#}")))?
            }
            None => {
                let mut hashing = Hashing { inner: &mut entry, hash: Sha256::new(), bytes: 0 };
                io::copy(&mut hashing, &mut io::sink()).map_err(|e| not_ours(format!("{rel}: {e}")))?;
                (hashing.bytes, hex::encode(hashing.hash.finalize()))
            }
        };
        seen.insert(rel, got);
    }
    let manifest = manifest.ok_or_else(|| not_ours("no manifest (a truncated file?)".into()))?;
    let listed: BTreeMap<String, (u64, String)> =
        manifest.files.iter().map(|f| (f.path.clone(), (f.bytes, f.sha256.clone()))).collect();
    for (path, want) in &listed {
        match seen.get(path) {
            None => return Err(not_ours(format!("{path} is missing"))),
            Some(got) if got != want => return Err(not_ours(format!("{path} does not match its checksum"))),
            Some(_) => {}
        }
    }
    if let Some(extra) = seen.keys().find(|p| !listed.contains_key(*p)) {
        return Err(not_ours(format!("{extra} is not in the manifest")));
    }
    Ok(manifest)
}

/// A plain relative path: normal components only.
fn check_relative(path: &str) -> anyhow::Result<()> {
    let p = Path::new(path);
    if path.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        bail!("{path:?} is not a plain relative path");
    }
    Ok(())
}

/// A reader that hashes and counts what passes through.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(root: &Path) {
        fs::create_dir_all(root.join("tls")).unwrap();
        fs::write(root.join("server.db"), vec![7u8; 100_000]).unwrap();
        fs::write(root.join("tls/ca.pem"), b"-----BEGIN CERTIFICATE-----").unwrap();
        fs::write(root.join("server.toml"), b"listen = \"127.0.0.1:0\"\n").unwrap();
    }

    fn archive(dir: &Path) -> (PathBuf, Manifest) {
        let src = dir.join("src");
        folder(&src);
        let files = folder_files(&src, &|_| false).unwrap();
        let out = dir.join("b.tar.zst");
        let m = write(&out, "sync-server", "test", BTreeMap::new(), &files, &mut |_| {}).unwrap();
        (out, m)
    }

    #[test]
    fn a_folder_comes_back_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let (out, written) = archive(dir.path());
        assert_eq!(written.files.len(), 3);
        let into = dir.path().join("restored");
        let read = restore(&out, &into, "sync-server", &|_| Ok(()), &mut |_| {}).unwrap();
        assert_eq!(read, written);
        for f in ["server.db", "tls/ca.pem", "server.toml"] {
            assert_eq!(fs::read(into.join(f)).unwrap(), fs::read(dir.path().join("src").join(f)).unwrap(), "{f}");
        }
        // Nothing is left beside it.
        let names: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert!(names.iter().all(|n| !n.contains("restoring") && !n.contains("partial")), "{names:?}");
    }

    #[test]
    fn an_existing_file_or_a_full_folder_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let (out, _) = archive(dir.path());
        let files = folder_files(&dir.path().join("src"), &|_| false).unwrap();
        let err = write(&out, "sync-server", "test", BTreeMap::new(), &files, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("exists already"), "{err}");
        let err = restore(&out, &dir.path().join("src"), "sync-server", &|_| Ok(()), &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
        // An empty folder is fine.
        let empty = dir.path().join("empty");
        fs::create_dir(&empty).unwrap();
        restore(&out, &empty, "sync-server", &|_| Ok(()), &mut |_| {}).unwrap();
        assert!(empty.join("server.db").exists());
    }

    #[test]
    fn a_damaged_truncated_or_foreign_archive_restores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (out, _) = archive(dir.path());
        let bytes = fs::read(&out).unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("truncated", bytes[..bytes.len() / 2].to_vec()),
            ("garbage", b"this is not an archive at all".to_vec()),
            ("empty", Vec::new()),
        ];
        for (what, data) in cases {
            let bad = dir.path().join(format!("{what}.tar.zst"));
            fs::write(&bad, data).unwrap();
            let into = dir.path().join(format!("into-{what}"));
            assert!(restore(&bad, &into, "sync-server", &|_| Ok(()), &mut |_| {}).is_err(), "{what}");
            assert!(!into.exists(), "{what}: nothing restored");
        }
        // A kiosk's restore refuses a server's backup.
        let into = dir.path().join("kiosk");
        let err = restore(&out, &into, "kiosk", &|_| Ok(()), &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("not of a kiosk"), "{err}");
        assert!(!into.exists());
        let leftovers: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains("restoring"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_file_larger_than_the_free_space_is_refused_before_it_is_written() {
        let dir = tempfile::tempdir().unwrap();
        // A header declaring a petabyte, and a few bytes of it (a bomb would
        // send zeros until the disk is full).
        let bomb = dir.path().join("bomb.tar.zst");
        let mut raw = Vec::new();
        let mut h = regular_header(1 << 50);
        h.set_path("server.db").unwrap();
        h.set_cksum();
        raw.extend_from_slice(h.as_bytes());
        raw.extend_from_slice(&[0u8; 4096]);
        fs::write(&bomb, zstd::bulk::compress(&raw, 3).unwrap()).unwrap();
        let into = dir.path().join("into");
        let err = restore(&bomb, &into, "sync-server", &|_| Ok(()), &mut |_| {}).unwrap_err();
        assert!(format!("{err:#}").contains("free"), "{err:#}");
        assert!(!into.exists());
        let written: u64 = walk_sizes(dir.path());
        assert!(written < 1 << 20, "nothing of the bomb was written: {written} bytes in the folder");
    }

    fn walk_sizes(dir: &Path) -> u64 {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() { walk_sizes(&e.path()) } else { e.metadata().unwrap().len() }
            })
            .sum()
    }

    #[test]
    fn a_changed_file_or_a_path_out_of_the_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        // A tampered file: same manifest, other bytes.
        let (_, manifest) = archive(dir.path());
        let forged = dir.path().join("forged.tar.zst");
        let mut tar = tar::Builder::new(zstd::stream::write::Encoder::new(File::create(&forged).unwrap(), 3).unwrap());
        for f in &manifest.files {
            let data = vec![1u8; f.bytes as usize];
            let mut h = regular_header(f.bytes);
            tar.append_data(&mut h, &f.path, data.as_slice()).unwrap();
        }
        let json = serde_json::to_vec(&manifest).unwrap();
        tar.append_data(&mut regular_header(json.len() as u64), MANIFEST, json.as_slice()).unwrap();
        tar.into_inner().unwrap().finish().unwrap();
        let err = restore(&forged, &dir.path().join("f"), "sync-server", &|_| Ok(()), &mut |_| {}).unwrap_err();
        assert!(format!("{err:#}").contains("checksum"), "{err:#}");
        assert!(!dir.path().join("f").exists());

        // A path that climbs out, written as raw tar bytes (the builder
        // itself refuses `..`).
        let escape = dir.path().join("escape.tar.zst");
        let mut raw = Vec::new();
        let mut h = regular_header(4);
        h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"../outside.tx");
        h.set_cksum();
        raw.extend_from_slice(h.as_bytes());
        raw.extend_from_slice(b"evil");
        raw.resize(raw.len() + 508, 0);
        raw.resize(raw.len() + 1024, 0);
        fs::write(&escape, zstd::bulk::compress(&raw, 3).unwrap()).unwrap();
        let err = restore(&escape, &dir.path().join("e"), "sync-server", &|_| Ok(()), &mut |_| {}).unwrap_err();
        assert!(format!("{err:#}").contains("plain relative path"), "{err:#}");
        assert!(!dir.path().join("outside.tx").exists());
    }
}
