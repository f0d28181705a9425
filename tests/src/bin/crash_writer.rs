//! Test harness binary: runs the deterministic scenario on a RocksDB until a target height,
//! printing `start <height>` on open and `committed <height> <state root>` after each durable
//! commit. The crash test kills it with SIGKILL at random moments and restarts it.

use std::io::Write;

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(target)) = (args.next(), args.next()) else {
        eprintln!("usage: crash-writer <db dir> <target height>");
        return std::process::ExitCode::from(2);
    };
    let Ok(target) = target.parse::<u64>() else {
        eprintln!("target height must be a number");
        return std::process::ExitCode::from(2);
    };
    match run(std::path::Path::new(&dir), target) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crash-writer: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(dir: &std::path::Path, target: u64) -> anyhow::Result<()> {
    let chain = doin_tests::open_rocks_chain(dir, doin_tests::scenario::genesis())?;
    let validator = doin_tests::scenario::validator();
    let mut out = std::io::stdout().lock();
    writeln!(out, "start {}", chain.tip().header.height)?;
    out.flush()?;
    while chain.tip().header.height < target {
        let h = doin_tests::scenario::step(&chain, &validator)?;
        writeln!(out, "committed {h} {}", chain.tip().header.state_root)?;
        out.flush()?;
    }
    Ok(())
}
