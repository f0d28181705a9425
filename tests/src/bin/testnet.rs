//! `doin-testnet`: runs a testnet scenario (`docs/testing.md#testnet`).
//!
//! ```text
//! doin-testnet run SCENARIO.toml [--doin PATH] [--out DIR]
//! doin-testnet clean
//! doin-testnet shape --delay-ms MS [--jitter-ms MS] [--duplicate-percent P]
//! ```
//!
//! `run` exits 0 when every step and every check passed, 1 with the failure otherwise; `clean`
//! removes what runs killed with SIGKILL left behind (namespaces, bridges, mounts); `shape` is
//! the link shaper the runner starts inside a host's namespace for `latency` and `duplicate`
//! steps.

use doin_tests::testnet::{host, run, shape};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: doin-testnet run SCENARIO.toml [--doin PATH] [--out DIR]
       doin-testnet clean
       doin-testnet shape --delay-ms MS [--jitter-ms MS] [--duplicate-percent P]   (inside a host's namespace; the runner starts it)";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => match parse_run(&args[1..]) {
            Ok(opts) => match run::run(opts).await {
                Ok(report) => {
                    println!(
                        "PASSED in {} s: height {}, {} transfers final on every node \
                         ({} accepted, {} refused, {} unanswered requests)",
                        report.secs,
                        report.height,
                        report.transfers_final,
                        report.accepted_answers,
                        report.refused_answers,
                        report.no_answers
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("FAILED: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("{e}\n{USAGE}");
                ExitCode::from(2)
            }
        },
        Some("shape") => match parse_shape(&args[1..]) {
            Ok(effects) => match shape::run(0, effects) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("{e}\n{USAGE}");
                ExitCode::from(2)
            }
        },
        Some("clean") => match host::clean_stale() {
            Ok(removed) => {
                for r in &removed {
                    println!("removed {r}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn parse_shape(args: &[String]) -> Result<shape::Effects, String> {
    let (mut delay, mut jitter, mut duplicate) = (None, 0u64, 0u64);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} needs a whole number"))
        };
        match a.as_str() {
            "--delay-ms" => delay = Some(value("--delay-ms")?),
            "--jitter-ms" => jitter = value("--jitter-ms")?,
            "--duplicate-percent" => duplicate = value("--duplicate-percent")?,
            s => return Err(format!("unexpected argument {s}")),
        }
    }
    let delay = delay.ok_or("--delay-ms is required")?;
    let duplicate_percent = u32::try_from(duplicate)
        .ok()
        .filter(|p| *p <= 100)
        .ok_or("--duplicate-percent: 0 to 100")?;
    Ok(shape::Effects {
        delay: Duration::from_millis(delay),
        jitter: Duration::from_millis(jitter),
        duplicate_percent,
    })
}

fn parse_run(args: &[String]) -> Result<run::Options, String> {
    let mut scenario = None;
    let mut doin = None;
    let mut out = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--doin" => doin = Some(PathBuf::from(it.next().ok_or("--doin needs a path")?)),
            "--out" => out = Some(PathBuf::from(it.next().ok_or("--out needs a directory")?)),
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s if scenario.is_none() => scenario = Some(PathBuf::from(s)),
            s => return Err(format!("unexpected argument {s}")),
        }
    }
    let scenario = scenario.ok_or("which scenario?")?;
    // By default the `doin` built beside this binary.
    let doin = match doin {
        Some(d) => d,
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name(format!("doin{}", std::env::consts::EXE_SUFFIX)),
    };
    let name = scenario
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "testnet".into());
    let out = out.unwrap_or_else(|| std::env::temp_dir().join(format!("doin-testnet-{name}")));
    Ok(run::Options {
        scenario,
        doin,
        out,
    })
}
