//! Who a queued invocation acts for and what called it, kept with it on the
//! queue so that every attempt runs as the synchronous one would have: the
//! same end user (`cloud.getWXContext()`), source, Link IoT Edge
//! `invokerContext`, and caller, whose depth still counts toward the call
//! depth limit.

use cloudlet_core::InvocationRef;
use cloudlet_runtime::{Caller, Identity, Origin};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Written {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    caller: Option<WrittenCaller>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    openid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    appid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unionid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    invoker_context: Option<String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WrittenCaller {
    invocation: InvocationRef,
    root: InvocationRef,
    depth: u32,
}

/// `origin` as the queue keeps it: JSON, or nothing for an invocation from
/// outside any chain, for no one in particular (most of them).
pub(super) fn written(origin: &Origin) -> Option<String> {
    let written = Written {
        caller: origin.caller.as_ref().map(|caller| WrittenCaller {
            invocation: caller.invocation.clone(),
            root: caller.root.clone(),
            depth: caller.depth,
        }),
        openid: origin.identity.openid.clone(),
        appid: origin.identity.appid.clone(),
        unionid: origin.identity.unionid.clone(),
        source: origin.source.clone(),
        invoker_context: origin.invoker_context.clone(),
    };
    // Serializing plain data cannot fail.
    (written != Written::default()).then(|| serde_json::to_string(&written).unwrap_or_default())
}

/// The origin the queue kept; one it cannot read (written by a later build)
/// is logged and taken as no one in particular.
pub(super) fn read(kept: Option<&str>) -> Origin {
    let Some(text) = kept else {
        return Origin::default();
    };
    let written: Written = serde_json::from_str(text).unwrap_or_else(|error| {
        tracing::warn!(%error, "cannot read a queued invocation's origin");
        Written::default()
    });
    Origin {
        caller: written.caller.map(|caller| Caller {
            invocation: caller.invocation,
            root: caller.root,
            depth: caller.depth,
        }),
        identity: Identity {
            openid: written.openid,
            appid: written.appid,
            unionid: written.unionid,
        },
        source: written.source,
        invoker_context: written.invoker_context,
    }
}

#[cfg(test)]
mod tests {
    use cloudlet_core::{EnvId, InvocationRef, RequestId};
    use cloudlet_runtime::{Caller, Identity, Origin};

    use super::{read, written};

    #[test]
    fn an_origin_reads_back_as_it_was_written() {
        let link = InvocationRef {
            env: EnvId::default_env(),
            request_id: RequestId::generate(),
        };
        let origin = Origin {
            caller: Some(Caller {
                invocation: link.clone(),
                root: link,
                depth: 3,
            }),
            identity: Identity {
                openid: Some("o-1".into()),
                appid: Some("wx1".into()),
                unionid: None,
            },
            source: Some("wx_client,scf".into()),
            invoker_context: Some(r#"{"a":1}"#.into()),
        };
        assert_eq!(read(written(&origin).as_deref()), origin);
    }

    #[test]
    fn no_one_in_particular_is_kept_as_nothing() {
        assert_eq!(written(&Origin::default()), None);
        assert_eq!(read(None), Origin::default());
    }
}
