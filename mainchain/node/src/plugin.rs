//! External domain plugins: a child process that evaluates parameter vectors, speaking JSON
//! lines on stdin/stdout (protocol in `docs/domain-plugins.md`).
//!
//! One request per line, one response per line, in order:
//! `{"id":1,"method":"evaluate","domain":"…","data_seed":"<hex>","params":["0.5",…]}` →
//! `{"id":1,"metric":"1.250000000"}` or `{"id":1,"error":"…"}`. Numbers are decimal strings
//! with at most nine fractional digits, exactly like consensus values, so a plugin can be
//! deterministic. A plugin that dies, answers garbage or takes longer than the timeout is
//! restarted on the next request; its evaluation counts as failed (no vote).

use doin_main_core::{DomainId, Fx};
use doin_types::Hash256;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How to start a plugin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSpec {
    /// The name domains refer to (`objective = { kind = "external", plugin = NAME }`).
    pub name: String,
    /// Program and arguments.
    pub command: Vec<String>,
    /// Longest one evaluation may take, in milliseconds.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_timeout() -> u64 {
    10_000
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {0} has no command")]
    NoCommand(String),
    #[error("cannot start plugin {name}: {error}")]
    Spawn { name: String, error: String },
    #[error("plugin {name} failed: {error}")]
    Io { name: String, error: String },
    #[error("plugin {name} did not answer within {ms} ms")]
    Timeout { name: String, ms: u64 },
    #[error("plugin {name} answered something invalid: {detail}")]
    BadAnswer { name: String, detail: String },
    #[error("plugin {name} could not evaluate: {error}")]
    Evaluation { name: String, error: String },
}

#[derive(Serialize)]
struct Request<'a> {
    id: u64,
    method: &'static str,
    domain: &'a str,
    data_seed: String,
    params: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Response {
    id: u64,
    #[serde(default)]
    metric: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

struct Running {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<std::io::Result<String>>,
}

/// A plugin process, started on first use and restarted after a failure.
pub struct Plugin {
    spec: PluginSpec,
    running: Mutex<Option<Running>>,
    next_id: Mutex<u64>,
}

/// Longest line accepted from a plugin.
const MAX_LINE: usize = 64 * 1024;

impl Plugin {
    pub fn new(spec: PluginSpec) -> Plugin {
        Plugin {
            spec,
            running: Mutex::new(None),
            next_id: Mutex::new(1),
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    fn start(&self) -> Result<Running, PluginError> {
        let (program, args) = self
            .spec
            .command
            .split_first()
            .ok_or_else(|| PluginError::NoCommand(self.spec.name.clone()))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| PluginError::Spawn {
                name: self.spec.name.clone(),
                error: e.to_string(),
            })?;
        let io_err = |what: &str| PluginError::Spawn {
            name: self.spec.name.clone(),
            error: format!("no {what} pipe"),
        };
        let stdin = child.stdin.take().ok_or_else(|| io_err("stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| io_err("stdout"))?;
        // A reader thread turns the blocking pipe into a channel we can wait on with a timeout.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut line = String::new();
                let res = Read::by_ref(&mut reader)
                    .take(MAX_LINE as u64 + 1)
                    .read_line(&mut line)
                    .map(|n| (n, line));
                let stop = !matches!(res, Ok((n, _)) if n > 0);
                if tx.send(res.map(|(_, l)| l)).is_err() || stop {
                    return;
                }
            }
        });
        Ok(Running {
            child,
            stdin,
            lines: rx,
        })
    }

    /// Evaluates `params` for `domain`; blocking (call from a blocking thread).
    pub fn evaluate(
        &self,
        domain: &DomainId,
        data_seed: &Hash256,
        params: &[Fx],
    ) -> Result<Fx, PluginError> {
        let name = self.spec.name.clone();
        let id = {
            let mut n = self.next_id.lock();
            *n += 1;
            *n
        };
        let mut guard = self.running.lock();
        if guard.is_none() {
            *guard = Some(self.start()?);
        }
        let result = (|| {
            let r = guard.as_mut().ok_or_else(|| PluginError::Io {
                name: name.clone(),
                error: "not running".into(),
            })?;
            let req = Request {
                id,
                method: "evaluate",
                domain: domain.as_str(),
                data_seed: data_seed.to_hex(),
                params: params.iter().map(|p| p.to_string()).collect(),
            };
            let mut line = serde_json::to_string(&req).map_err(|e| PluginError::Io {
                name: name.clone(),
                error: e.to_string(),
            })?;
            line.push('\n');
            r.stdin
                .write_all(line.as_bytes())
                .and_then(|_| r.stdin.flush())
                .map_err(|e| PluginError::Io {
                    name: name.clone(),
                    error: e.to_string(),
                })?;
            let answer = match r
                .lines
                .recv_timeout(Duration::from_millis(self.spec.timeout_ms))
            {
                Ok(Ok(l)) if l.is_empty() => {
                    return Err(PluginError::Io {
                        name: name.clone(),
                        error: "plugin exited".into(),
                    })
                }
                Ok(Ok(l)) => l,
                Ok(Err(e)) => {
                    return Err(PluginError::Io {
                        name: name.clone(),
                        error: e.to_string(),
                    })
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(PluginError::Timeout {
                        name: name.clone(),
                        ms: self.spec.timeout_ms,
                    })
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(PluginError::Io {
                        name: name.clone(),
                        error: "plugin output closed".into(),
                    })
                }
            };
            let bad = |detail: String| PluginError::BadAnswer {
                name: name.clone(),
                detail,
            };
            if answer.len() > MAX_LINE {
                return Err(bad("line too long".into()));
            }
            let resp: Response = serde_json::from_str(answer.trim_end())
                .map_err(|e| bad(format!("not a response object: {e}")))?;
            if resp.id != id {
                return Err(bad(format!("answered id {} to request {id}", resp.id)));
            }
            match (resp.metric, resp.error) {
                (Some(m), None) => Fx::parse(&m).map_err(|e| bad(e.to_string())),
                (None, Some(e)) => Err(PluginError::Evaluation {
                    name: name.clone(),
                    error: e.chars().take(200).collect(),
                }),
                _ => Err(bad("exactly one of metric and error must be present".into())),
            }
        })();
        if matches!(
            result,
            Err(PluginError::Io { .. }
                | PluginError::Timeout { .. }
                | PluginError::BadAnswer { .. })
        ) {
            // Out of sync or dead: start afresh next time.
            if let Some(mut r) = guard.take() {
                let _ = r.child.kill();
                let _ = r.child.wait();
            }
        }
        result
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        if let Some(mut r) = self.running.lock().take() {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
    }
}
