//! The local blob store: streaming writes that become visible whole or not at all.

use std::time::Duration;

use sealbox::blob::{BlobError, BlobKey, BlobStore, LocalBlobStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn key(k: &str) -> BlobKey {
    BlobKey::new(k).unwrap()
}

async fn read_all(store: &LocalBlobStore, k: &BlobKey, offset: u64) -> Vec<u8> {
    let mut reader = store.open(k, offset).await.unwrap();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).await.unwrap();
    out
}

fn tmp_entries(root: &std::path::Path) -> usize {
    std::fs::read_dir(root.join(".tmp")).unwrap().count()
}

#[tokio::test]
async fn put_then_read_from_any_offset() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path()).await.unwrap();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let info = store.put(&key("a1"), &mut data.as_slice()).await.unwrap();
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(info.blake3, blake3::hash(&data).to_hex().to_string());
    assert_eq!(store.size(&key("a1")).await.unwrap(), data.len() as u64);
    assert_eq!(read_all(&store, &key("a1"), 0).await, data);
    assert_eq!(read_all(&store, &key("a1"), 999_000).await, data[999_000..]);
    assert!(
        read_all(&store, &key("a1"), data.len() as u64)
            .await
            .is_empty()
    );
    assert!(matches!(
        store.open(&key("a1"), data.len() as u64 + 1).await.err(),
        Some(BlobError::OffsetPastEnd { .. })
    ));
    // Sharded: the file lives one directory below the root.
    let path = store.path_of(&key("a1"));
    assert_eq!(path.parent().unwrap().parent().unwrap(), dir.path());
    assert_eq!(tmp_entries(dir.path()), 0);
}

#[tokio::test]
async fn a_blob_is_invisible_until_its_last_byte_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path()).await.unwrap();
    let (mut writer, mut reader) = tokio::io::duplex(64 * 1024);
    let putting = {
        let store = store.clone();
        tokio::spawn(async move { store.put(&key("slow"), &mut reader).await })
    };
    for _ in 0..4 {
        writer.write_all(&[7u8; 100_000]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(matches!(
            store.open(&key("slow"), 0).await.err(),
            Some(BlobError::NotFound)
        ));
        assert!(matches!(
            store.size(&key("slow")).await.err(),
            Some(BlobError::NotFound)
        ));
    }
    drop(writer);
    let info = putting.await.unwrap().unwrap();
    assert_eq!(info.size, 400_000);
    assert_eq!(read_all(&store, &key("slow"), 0).await, vec![7u8; 400_000]);
}

#[tokio::test]
async fn an_interrupted_write_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path()).await.unwrap();

    // The writer disappears mid-stream: the put future is dropped (a client hung up).
    let (mut writer, mut reader) = tokio::io::duplex(1024);
    let putting = {
        let store = store.clone();
        tokio::spawn(async move { store.put(&key("cut"), &mut reader).await })
    };
    writer.write_all(&[1u8; 4096]).await.ok();
    tokio::time::sleep(Duration::from_millis(50)).await;
    putting.abort();
    let _ = putting.await;
    assert!(matches!(
        store.open(&key("cut"), 0).await.err(),
        Some(BlobError::NotFound)
    ));
    assert_eq!(
        tmp_entries(dir.path()),
        0,
        "the partial temporary file was removed"
    );

    // The source fails with an error: put reports it and nothing is visible.
    struct Failing(u8);
    impl tokio::io::AsyncRead for Failing {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            self.0 += 1;
            if self.0 > 3 {
                return std::task::Poll::Ready(Err(std::io::Error::other("source broke")));
            }
            buf.put_slice(&[9u8; 1000]);
            std::task::Poll::Ready(Ok(()))
        }
    }
    let err = store.put(&key("cut"), &mut Failing(0)).await.unwrap_err();
    assert!(err.to_string().contains("source broke"));
    assert!(matches!(
        store.size(&key("cut")).await.err(),
        Some(BlobError::NotFound)
    ));
    assert_eq!(tmp_entries(dir.path()), 0);
}

#[tokio::test]
async fn replacing_a_blob_is_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path()).await.unwrap();
    store
        .put(&key("r"), &mut &b"old contents"[..])
        .await
        .unwrap();

    let (mut writer, mut reader) = tokio::io::duplex(1024);
    let putting = {
        let store = store.clone();
        tokio::spawn(async move { store.put(&key("r"), &mut reader).await })
    };
    writer.write_all(b"new ").await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        read_all(&store, &key("r"), 0).await,
        b"old contents",
        "old blob until commit"
    );
    writer.write_all(b"contents!").await.unwrap();
    drop(writer);
    putting.await.unwrap().unwrap();
    assert_eq!(read_all(&store, &key("r"), 0).await, b"new contents!");
}

#[tokio::test]
async fn delete_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path()).await.unwrap();
    store.put(&key("d"), &mut &b"x"[..]).await.unwrap();
    store.delete(&key("d")).await.unwrap();
    assert!(matches!(
        store.open(&key("d"), 0).await.err(),
        Some(BlobError::NotFound)
    ));
    store.delete(&key("d")).await.unwrap();
}

#[tokio::test]
async fn reopening_removes_writes_a_crash_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    LocalBlobStore::open(dir.path()).await.unwrap();
    std::fs::write(dir.path().join(".tmp/0190abcd"), b"half a blob").unwrap();
    LocalBlobStore::open(dir.path()).await.unwrap();
    assert_eq!(tmp_entries(dir.path()), 0);
}

#[test]
fn keys_cannot_escape_the_store() {
    for bad in [
        "",
        "../etc/passwd",
        "a/b",
        ".tmp",
        "x y",
        "é",
        &"k".repeat(129),
    ] {
        assert!(BlobKey::new(bad).is_err(), "{bad:?} accepted");
    }
    for good in [
        "0190abcd-ef01-7000-8000-000000000000",
        "file_1",
        &"k".repeat(128),
    ] {
        assert!(BlobKey::new(good).is_ok(), "{good:?} refused");
    }
}
