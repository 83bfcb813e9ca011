//! Functions calling functions: the [`FunctionCalls`] each invocation's code
//! gets, and the credentials that let SDKs in other processes use it.
//!
//! Every invocation gets a [`ChainLink`]: its place in a chain of calls (its
//! own request ID, its caller, the chain's root and depth), the end user and
//! source it acts for, and its deadline. A call made through it runs as a
//! child: recorded with its caller and root, one level deeper (refused past
//! the depth limit before it runs), held to the caller's deadline when
//! synchronous, and in the caller's env unless the server allows another.
//!
//! The node engine's SDKs call over HTTP (the TCB admin route). They present
//! the invocation's credential, issued on first use, which names its link in
//! [`Credentials`] and stops working when the invocation ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cloudlet_core::{EnvId, ErrorCode, FunctionError, FunctionName, InvocationRef, RequestId};
use cloudlet_runtime::{
    CallAnswer, CallMode, CallRefused, Caller, EnvChoice, FetchRequest, FetchResponse,
    FunctionCall, FunctionCalls, Origin, Output, Publication, Published,
};
use parking_lot::Mutex;
use subtle::ConstantTimeEq;

use super::{outbound, temporary, InvokeContext, InvokeError, Invoker, Qualifier, Target};
use crate::auth::Access;

/// The record's trigger for a call made by a function.
const CALL_TRIGGER: &str = "call";

/// How long before its caller's deadline a synchronous callee's ends: the
/// caller then hears that the callee timed out, and has the time to answer
/// with it, rather than both ending at the same instant.
const CALLER_MARGIN: Duration = Duration::from_millis(20);

/// One invocation's place in its chain of calls. See the module documentation.
pub(crate) struct ChainLink {
    /// Itself, for the credential's entry, which must not keep it alive.
    this: Weak<ChainLink>,
    invoker: Weak<Invoker>,
    /// This invocation.
    me: InvocationRef,
    origin: Origin,
    deadline: Instant,
    /// The credential, once an SDK asked for it.
    credential: OnceLock<String>,
}

impl ChainLink {
    pub(super) fn new(
        invoker: Weak<Invoker>,
        me: InvocationRef,
        origin: Origin,
        deadline: Instant,
    ) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            this: this.clone(),
            invoker,
            me,
            origin,
            deadline,
            credential: OnceLock::new(),
        })
    }

    /// The origin a call made by this invocation runs with: this invocation
    /// as its caller, one level deeper, the same end user, `scf` added to the
    /// source (CloudBase's `wx_client,scf`).
    fn child_origin(&self, invoker_context: Option<String>) -> Origin {
        let parent = self.origin.caller.as_ref();
        Origin {
            caller: Some(Caller {
                invocation: self.me.clone(),
                root: parent.map_or_else(|| self.me.clone(), |p| p.root.clone()),
                depth: parent.map_or(0, |p| p.depth) + 1,
            }),
            identity: self.origin.identity.clone(),
            source: Some(match self.origin.source.as_deref() {
                Some(source) if !source.is_empty() => format!("{source},scf"),
                _ => "scf".to_owned(),
            }),
            invoker_context,
        }
    }

    /// A synchronous callee ends [`CALLER_MARGIN`] before its caller, which
    /// could not take its answer afterwards; an asynchronous one has its own
    /// time.
    fn callee_deadline(&self, mode: CallMode) -> Option<Instant> {
        (mode == CallMode::Sync).then(|| {
            let earlier = self.deadline.checked_sub(CALLER_MARGIN);
            earlier.map_or(self.deadline, |earlier| earlier.max(Instant::now()))
        })
    }

    /// The service, while the server runs.
    fn invoker(&self) -> Result<Arc<Invoker>, CallRefused> {
        self.invoker.upgrade().ok_or_else(|| CallRefused {
            code: ErrorCode::ServiceUnavailable,
            message: "the server is shutting down".to_owned(),
        })
    }

    /// [`ChainLink::child_origin`], refused past the depth limit; `what`
    /// names the call for the refusal.
    fn child_within_depth(
        &self,
        invoker: &Invoker,
        what: &str,
        invoker_context: Option<String>,
    ) -> Result<Origin, CallRefused> {
        let origin = self.child_origin(invoker_context);
        match origin.caller.as_ref() {
            Some(caller) if caller.depth > invoker.calls.max_depth => {
                Err(too_deep(what, caller, invoker.calls.max_depth))
            }
            _ => Ok(origin),
        }
    }

    /// Ends the credential, if one was issued: the invocation is over.
    pub(super) fn revoke(&self, credentials: &Credentials) {
        if let Some(credential) = self.credential.get() {
            credentials.revoke(credential);
        }
    }
}

/// An invocation abandoned mid-way (its caller went away) never reaches the
/// service's revoke; its credential's entry goes when its link does.
impl Drop for ChainLink {
    fn drop(&mut self) {
        if let Some(invoker) = self.invoker.upgrade() {
            self.revoke(&invoker.credentials);
        }
    }
}

#[async_trait]
impl FunctionCalls for ChainLink {
    async fn call(&self, call: FunctionCall) -> Result<CallAnswer, CallRefused> {
        let invoker = self.invoker()?;
        let env = invoker
            .callee_env(&self.me.env, &call.env)
            .await
            .map_err(refused)?;
        let origin = self.child_within_depth(&invoker, &call.name, call.invoker_context.clone())?;
        let deadline = self.callee_deadline(call.mode);
        let request_id = RequestId::generate();
        invoker
            .call_as(Access::for_caller(env), call, origin, deadline, request_id)
            .await
    }

    fn credential(&self) -> String {
        let invoker = self.invoker.upgrade();
        self.credential
            .get_or_init(|| match invoker {
                Some(invoker) => invoker.credentials.issue(self),
                // No server to call back: a credential nothing accepts.
                None => String::new(),
            })
            .clone()
    }

    fn endpoint(&self) -> Option<String> {
        self.invoker.upgrade()?.endpoint.get().cloned()
    }

    async fn publish(&self, message: Publication) -> Result<Published, CallRefused> {
        let invoker = self.invoker()?;
        let what = format!("a message to {}", message.topic);
        let origin = self.child_within_depth(&invoker, &what, None)?;
        let message_id = RequestId::generate();
        let access = Access::for_caller(self.me.env.clone());
        let deliveries = invoker
            .publish(&access, &message_id, message, origin)
            .await
            .map_err(refused)?;
        Ok(Published {
            message_id,
            deliveries,
        })
    }

    async fn fetch(&self, request: FetchRequest) -> Result<FetchResponse, CallRefused> {
        let invoker = self.invoker()?;
        let url = request.url.as_str();
        if let (Some(object), Some(objects)) = (temporary::object_of(url), invoker.tmp_objects()) {
            return temporary::read(objects, object, &request.method).await;
        }
        match invoker.outbound.get() {
            Some(outbound) if outbound.allows(url) => outbound.send(request).await,
            _ => Err(outbound::not_allowed(url)),
        }
    }
}

impl Invoker {
    /// Runs `call` in the env `access` grants, as a call with `origin`: what
    /// a chain link does, and what the TCB admin route does for a caller
    /// outside any invocation (an env key). `deadline` caps the callee's own.
    pub(crate) async fn call_as(
        &self,
        access: Access,
        call: FunctionCall,
        origin: Origin,
        deadline: Option<Instant>,
        request_id: RequestId,
    ) -> Result<CallAnswer, CallRefused> {
        let name = FunctionName::parse(call.name.as_str()).map_err(|e| CallRefused {
            code: ErrorCode::InvalidParam,
            message: e.to_string(),
        })?;
        let target = Target {
            access,
            name,
            qualifier: call
                .qualifier
                .as_deref()
                .map_or(Qualifier::Latest, Qualifier::parse),
        };
        let context = InvokeContext {
            request_id,
            trigger: CALL_TRIGGER.to_owned(),
            origin,
            deadline,
            // A calling function reads a result, never a stream.
            accepts_event_stream: false,
            event_written_by_cloudlet: false,
            earlier_attempts: None,
        };
        match call.mode {
            CallMode::Sync => {
                let invocation = self
                    .invoke(target, call.event, context)
                    .await
                    .map_err(refused)?;
                let result = invocation.result.and_then(|output| match output {
                    Output::Json(json) => Ok(Some(json)),
                    // HTTP functions answer over HTTP, not to callFunction.
                    Output::Stream(_) => Err(FunctionError::new(
                        ErrorCode::FunctionInvocationFailed,
                        "the function answered with a stream, which a function call cannot carry; call it over HTTP",
                    )),
                });
                Ok(CallAnswer {
                    request_id: invocation.request_id,
                    result,
                })
            }
            CallMode::Async => self.call_in_background(target, call.event, context).await,
        }
    }

    /// Queues the callee and answers at once with its request ID, as the
    /// invoke API's `X-Invocation-Type: async` does: the queue runs it,
    /// retries it, and its record keeps its result. A callee that does not
    /// exist is refused here, so the caller hears of it.
    async fn call_in_background(
        &self,
        target: Target,
        event: cloudlet_runtime::Event,
        context: InvokeContext,
    ) -> Result<CallAnswer, CallRefused> {
        let (request_id, _) = self
            .enqueue(target, event, &context)
            .await
            .map_err(refused)?;
        Ok(CallAnswer {
            request_id,
            result: Ok(None),
        })
    }

    /// The env a call from `own` names, if the caller may use it: its own,
    /// or one the server's `--env-calls` lets `own` call.
    async fn callee_env(&self, own: &EnvId, choice: &EnvChoice) -> Result<EnvId, InvokeError> {
        let named = match choice {
            EnvChoice::Own => return Ok(own.clone()),
            EnvChoice::Named(name) => EnvId::parse(name.as_str())
                .map_err(|e| InvokeError::new(ErrorCode::InvalidEnv, e.to_string()))?,
            EnvChoice::NamedOrOwn(name) => match EnvId::parse(name.as_str()) {
                Ok(env) if self.env_exists(&env).await? => env,
                _ => return Ok(own.clone()),
            },
        };
        if named == *own || self.calls.may_call(own, &named) {
            return Ok(named);
        }
        Err(InvokeError::new(
            ErrorCode::PermissionDenied,
            format!(
                "functions of env {own} may not call functions of env {named}; \
                 the server allows it with --env-calls {own}={named}"
            ),
        ))
    }
}

/// The refusal of a call past the depth limit, naming the chain.
fn too_deep(name: &str, caller: &Caller, max_depth: u32) -> CallRefused {
    CallRefused {
        code: ErrorCode::ExceedCallDepthLimit,
        message: format!(
            "{name} would be call {} of a chain that began with {} in env {}, \
             past the limit of {max_depth} (--max-call-depth)",
            caller.depth, caller.root.request_id, caller.root.env
        ),
    }
}

/// How the service turns a refusal into what the calling code sees.
fn refused(error: InvokeError) -> CallRefused {
    CallRefused {
        code: error.code,
        message: error.message,
    }
}

/// What calls between functions may do: how deep a chain may go, and which
/// envs' functions may call which other envs'.
#[derive(Debug, Clone)]
pub struct CallPolicy {
    pub max_depth: u32,
    /// For each env, the other envs its functions may call.
    pub cross_env: HashMap<EnvId, Vec<EnvId>>,
}

impl Default for CallPolicy {
    fn default() -> Self {
        Self {
            max_depth: 32,
            cross_env: HashMap::new(),
        }
    }
}

impl CallPolicy {
    fn may_call(&self, from: &EnvId, to: &EnvId) -> bool {
        self.cross_env
            .get(from)
            .is_some_and(|allowed| allowed.contains(to))
    }
}

/// The credentials of invocations running now, each naming its chain link.
///
/// A credential is `<id>.<secret>`: the ID finds the entry, and the secret
/// is compared in constant time, so that the time an answer takes says
/// nothing about a guessed secret (a map keyed by the whole secret would).
#[derive(Default)]
pub(crate) struct Credentials {
    live: Mutex<HashMap<u64, Issued>>,
    next_id: AtomicU64,
}

struct Issued {
    secret: [u8; 16],
    link: Weak<ChainLink>,
}

impl Credentials {
    fn issue(&self, link: &ChainLink) -> String {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let secret: [u8; 16] = rand::random();
        let issued = Issued {
            secret,
            link: link.this.clone(),
        };
        self.live.lock().insert(id, issued);
        format!("{id}.{}", hex::encode(secret))
    }

    fn revoke(&self, credential: &str) {
        if let Some((id, _)) = parse(credential) {
            self.live.lock().remove(&id);
        }
    }

    /// The running invocation `credential` was issued to, if it still runs.
    pub(crate) fn resolve(&self, credential: &str) -> Option<Arc<ChainLink>> {
        let (id, secret) = parse(credential)?;
        let live = self.live.lock();
        let issued = live.get(&id)?;
        if bool::from(issued.secret.ct_eq(&secret)) {
            issued.link.upgrade()
        } else {
            None
        }
    }
}

/// Whether `token` has the form of a credential this server issues to
/// invocations (so that an ended invocation's is told from another key).
pub(crate) fn is_invocation_credential(token: &str) -> bool {
    parse(token).is_some()
}

/// A credential's ID and secret, if it has the form this server issues.
fn parse(credential: &str) -> Option<(u64, [u8; 16])> {
    let (id, secret) = credential.split_once('.')?;
    let id = id.parse().ok()?;
    let mut bytes = [0u8; 16];
    hex::decode_to_slice(secret, &mut bytes).ok()?;
    Some((id, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> Arc<ChainLink> {
        let me = InvocationRef {
            env: EnvId::default_env(),
            request_id: RequestId::generate(),
        };
        ChainLink::new(Weak::new(), me, Origin::default(), Instant::now())
    }

    #[test]
    fn a_credential_names_its_invocation_until_revoked() {
        let credentials = Credentials::default();
        let link = link();
        let credential = credentials.issue(&link);
        let found = credentials.resolve(&credential).expect("a live credential");
        assert!(Arc::ptr_eq(&found, &link));
        credentials.revoke(&credential);
        assert!(credentials.resolve(&credential).is_none());
    }

    #[test]
    fn a_credential_with_a_wrong_secret_names_nothing() {
        let credentials = Credentials::default();
        let credential = credentials.issue(&link());
        let (id, _) = credential.split_once('.').expect("id.secret");
        let forged = format!("{id}.{}", "0".repeat(32));
        assert!(credentials.resolve(&forged).is_none());
        assert!(credentials.resolve("not a credential").is_none());
    }

    #[test]
    fn a_credential_dies_with_its_invocation() {
        let credentials = Credentials::default();
        let link = link();
        let credential = credentials.issue(&link);
        drop(link);
        assert!(credentials.resolve(&credential).is_none());
    }

    #[test]
    fn a_child_is_one_level_deeper_with_the_same_root_and_user() {
        let root = link();
        let child = ChainLink::new(
            Weak::new(),
            InvocationRef {
                env: EnvId::default_env(),
                request_id: RequestId::generate(),
            },
            root.child_origin(None),
            Instant::now(),
        );
        let grandchild = child.child_origin(Some("{}".to_owned()));
        let caller = grandchild.caller.expect("a caller");
        assert_eq!(caller.depth, 2);
        assert_eq!(caller.root, root.me);
        assert_eq!(caller.invocation, child.me);
        assert_eq!(grandchild.source.as_deref(), Some("scf,scf"));
        assert_eq!(grandchild.invoker_context.as_deref(), Some("{}"));
    }

    #[test]
    fn a_client_source_is_chained_with_scf() {
        let origin = Origin {
            source: Some("wx_client".to_owned()),
            ..Origin::default()
        };
        let me = InvocationRef {
            env: EnvId::default_env(),
            request_id: RequestId::generate(),
        };
        let link = ChainLink::new(Weak::new(), me, origin, Instant::now());
        assert_eq!(
            link.child_origin(None).source.as_deref(),
            Some("wx_client,scf")
        );
    }
}
