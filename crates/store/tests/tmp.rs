//! Temporary objects on a real file system.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use cloudlet_core::EnvId;
use cloudlet_store::tmp::{TmpError, TmpLimits, TmpObjects};
use tokio::io::AsyncReadExt;

fn env(name: &str) -> EnvId {
    EnvId::parse(name.to_owned()).unwrap()
}

fn chunks(
    parts: &[&'static [u8]],
) -> impl futures_util::Stream<Item = Result<Bytes, String>> + Unpin {
    futures_util::stream::iter(
        parts
            .iter()
            .map(|p| Ok(Bytes::from_static(p)))
            .collect::<Vec<_>>(),
    )
}

async fn read_all(mut file: tokio::fs::File) -> Vec<u8> {
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).await.unwrap();
    bytes
}

#[tokio::test]
async fn an_object_is_served_by_its_name_with_its_type_until_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let objects = TmpObjects::open(dir.path()).unwrap();
    let limits = TmpLimits {
        ttl: Duration::from_millis(300),
        ..TmpLimits::default()
    };
    let prod = env("prod");
    let object = objects
        .put(&prod, "image/png", chunks(&[b"ab", b"cd"]), limits)
        .await
        .unwrap();
    assert_eq!(object.size, 4);
    assert_eq!(object.name.len(), 32);
    let (found, file) = objects.get(&prod, &object.name).await.unwrap().unwrap();
    assert_eq!(found.content_type, "image/png");
    assert_eq!(read_all(file).await, b"abcd");
    assert!(objects
        .get(&env("other"), &object.name)
        .await
        .unwrap()
        .is_none());
    assert!(objects
        .get(&prod, "../../etc/passwd")
        .await
        .unwrap()
        .is_none());
    assert_eq!(objects.held(&prod), 4);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        objects.get(&prod, &object.name).await.unwrap().is_none(),
        "expired"
    );
}

#[tokio::test]
async fn an_object_over_the_limit_or_the_quota_is_refused_and_nothing_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let objects = TmpObjects::open(dir.path()).unwrap();
    let limits = TmpLimits {
        max_object_bytes: 5,
        env_quota_bytes: 8,
        ..TmpLimits::default()
    };
    let prod = env("prod");
    let too_large = objects
        .put(&prod, "text/plain", chunks(&[b"abc", b"def"]), limits)
        .await;
    assert!(
        matches!(too_large, Err(TmpError::TooLarge(5))),
        "{too_large:?}"
    );
    assert_eq!(
        objects.held(&prod),
        0,
        "the refused upload's bytes are given back"
    );
    objects
        .put(&prod, "text/plain", chunks(&[b"12345"]), limits)
        .await
        .unwrap();
    let over = objects
        .put(&prod, "text/plain", chunks(&[b"1234"]), limits)
        .await;
    assert!(matches!(over, Err(TmpError::OverQuota(8))), "{over:?}");
    objects
        .put(&env("other"), "text/plain", chunks(&[b"1234"]), limits)
        .await
        .unwrap();
    let files = std::fs::read_dir(dir.path().join("prod")).unwrap().count();
    assert_eq!(
        files, 2,
        "one object and its description, no partial upload"
    );
}

#[tokio::test]
async fn expired_objects_and_crashed_uploads_are_removed_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let prod = env("prod");
    let short = TmpLimits {
        ttl: Duration::from_millis(100),
        ..TmpLimits::default()
    };
    let (kept, expired) = {
        let objects = TmpObjects::open(dir.path()).unwrap();
        let kept = objects
            .put(&prod, "a/b", chunks(&[b"kept"]), TmpLimits::default())
            .await
            .unwrap();
        let expired = objects
            .put(&prod, "a/b", chunks(&[b"gone"]), short)
            .await
            .unwrap();
        (kept, expired)
    };
    std::fs::write(dir.path().join("prod/.partial-0123"), b"half").unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let objects = std::sync::Arc::new(TmpObjects::open(dir.path()).unwrap());
    assert_eq!(
        objects.held(&prod),
        4,
        "only the object still served counts"
    );
    assert!(!dir.path().join("prod/.partial-0123").exists());
    assert!(!dir.path().join(format!("prod/{}", expired.name)).exists());
    assert!(objects.get(&prod, &kept.name).await.unwrap().is_some());
    objects.sweep().await.unwrap();
    assert!(objects.get(&prod, &kept.name).await.unwrap().is_some());
}
