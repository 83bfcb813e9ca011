//! The engines of this server, one per kind, and which one runs a function.
//!
//! An HTTP function (one with `scf_bootstrap`) runs on the HTTP engine,
//! whatever its runtime names, since its bootstrap chooses what runs. For an
//! event function, its `runtime` chooses: the js engine for `js` (or none); real
//! Node.js for `Nodejs*` runtimes, which CloudBase projects name, so that
//! their functions run where they were written to run. Where this server has
//! no Node.js engine (no `node` found), or was told to run Node runtimes on
//! the js engine (`--node-runtimes-on js`, for speed), they run on the js
//! engine, and the function's info says so.

use std::sync::Arc;

use cloudlet_core::{FunctionConfig, FunctionKind, Runtime};
use cloudlet_runtime::{Engine, EngineUsage};

/// Where functions that name a Node.js runtime run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRuntimesOn {
    /// Real Node.js processes, where `node` is found (else the js engine).
    Node,
    /// The in-process js engine: faster to start and lighter, less of Node's API.
    Js,
}

/// The engine a function runs on, and why it is not the one its runtime
/// names, when it is not.
#[derive(Clone)]
pub struct Choice {
    pub engine: Arc<dyn Engine>,
    pub note: Option<String>,
}

pub struct Engines {
    js: Arc<dyn Engine>,
    node: Option<Arc<dyn Engine>>,
    node_runtimes_on: NodeRuntimesOn,
    /// HTTP functions' engine; without one, they are refused at deploy.
    http: Option<Arc<dyn Engine>>,
}

impl Engines {
    pub fn new(
        js: Arc<dyn Engine>,
        node: Option<Arc<dyn Engine>>,
        node_runtimes_on: NodeRuntimesOn,
    ) -> Self {
        Self {
            js,
            node,
            node_runtimes_on,
            http: None,
        }
    }

    /// The same engines, with `http` running HTTP functions.
    pub fn with_http(self, http: Arc<dyn Engine>) -> Self {
        Self {
            http: Some(http),
            ..self
        }
    }

    /// Only the js engine: every function runs on it.
    pub fn js_only(js: Arc<dyn Engine>) -> Self {
        Self::new(js, None, NodeRuntimesOn::Js)
    }

    /// The engine for a function version with `config`, or why there is none.
    pub fn for_config(&self, config: &FunctionConfig) -> Result<Choice, String> {
        match (config.kind, &self.http) {
            (FunctionKind::Event, _) => Ok(self.for_runtime(&config.runtime)),
            (FunctionKind::Http, Some(http)) => Ok(Choice {
                engine: http.clone(),
                note: None,
            }),
            (FunctionKind::Http, None) => {
                Err("this server does not run HTTP functions (functions with scf_bootstrap)".into())
            }
        }
    }

    /// The engine for an event function whose `config.json` names `runtime`.
    fn for_runtime(&self, runtime: &Runtime) -> Choice {
        let js = |note: Option<String>| Choice {
            engine: self.js.clone(),
            note,
        };
        match runtime {
            Runtime::Js => js(None),
            Runtime::Node(name) => match (&self.node, self.node_runtimes_on) {
                (Some(node), NodeRuntimesOn::Node) => Choice {
                    engine: node.clone(),
                    note: None,
                },
                (None, NodeRuntimesOn::Node) => js(Some(format!(
                    "{name} runs on the js engine: this server found no Node.js (install node 18 or later, or set --node)"
                ))),
                (_, NodeRuntimesOn::Js) => js(Some(format!(
                    "{name} runs on the js engine, as this server was started with --node-runtimes-on js"
                ))),
            },
            // Packages refuse other runtimes for event functions.
            Runtime::Other(name) => js(Some(format!(
                "{name} is not a runtime of event functions; the js engine tries it"
            ))),
        }
    }

    /// Every engine of this server.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Engine>> {
        std::iter::once(&self.js)
            .chain(self.node.iter())
            .chain(self.http.iter())
    }

    /// The names of the engines this server has, for its start-up line.
    pub fn names(&self) -> Vec<&'static str> {
        self.all().map(|engine| engine.name()).collect()
    }

    /// What the instances of all engines hold together.
    pub fn usage(&self) -> EngineUsage {
        self.all()
            .map(|engine| engine.usage())
            .fold(EngineUsage::default(), |total, one| EngineUsage {
                instances: total.instances + one.instances,
                memory_held_bytes: total.memory_held_bytes + one.memory_held_bytes,
                memory_budget_bytes: total.memory_budget_bytes.max(one.memory_budget_bytes),
            })
    }
}
