//! The `img-proxy` binary: parses the command line and runs one role.

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;
use img_proxy::cluster::Role;
use img_proxy::config::{Cli, Command, Config};

/// mimalloc for small blocks, glibc for large buffers: see
/// [`img_proxy::allocator`] for why and the measurements.
#[global_allocator]
static GLOBAL: img_proxy::allocator::Allocator = img_proxy::allocator::Allocator;

fn main() -> ExitCode {
    tune_allocator();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let (role, args) = match cli.command {
        None => (Role::Standalone, cli.node),
        Some(Command::Standalone(a)) => (Role::Standalone, a),
        Some(Command::Gateway(a)) => (Role::Gateway, a),
        Some(Command::Worker(a)) => (Role::Worker, a),
        Some(tool) => return run_tool(tool),
    };
    let config = match args.into_config(role) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("img-proxy: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    run_node(config)
}

/// Help and version go to stdout with success; a usage error is one clear
/// line: clap's first line names the flag and, as its value name, the
/// environment variable.
fn usage_error(e: &clap::Error) -> ExitCode {
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let rendered = e.render().to_string();
    let line = rendered
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments");
    eprintln!("img-proxy: {}", line.trim_start_matches("error: "));
    ExitCode::from(2)
}

/// The subcommands that are not a node: `transform`, `probe`,
/// `placement`, `sign`, `warm` and the internal AVIF decoder.
fn run_tool(tool: Command) -> ExitCode {
    match tool {
        Command::Transform(args) => match img_proxy::pipeline::cli::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("img-proxy: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Probe(args) => img_proxy::probe::run(&args),
        Command::Placement(args) => {
            print!("{}", img_proxy::cluster::placement_demo::report(&args));
            ExitCode::SUCCESS
        }
        Command::Sign(args) => match img_proxy::edge::sign_cli::run(&args) {
            Ok(path) => {
                println!("{path}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("img-proxy: {e}");
                ExitCode::from(2)
            }
        },
        Command::Warm(args) => img_proxy::warm::run(&args),
        #[cfg(feature = "avif-decode")]
        Command::DecodeAvif(args) => img_proxy::pipeline::avif::child::child_main(&args),
        Command::Standalone(_) | Command::Gateway(_) | Command::Worker(_) => {
            unreachable!("node roles are started by main")
        }
    }
}

/// Runs a gateway, worker or standalone node until it is told to stop.
fn run_node(config: Config) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.io_threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("img-proxy: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(img_proxy::server::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("img-proxy: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Gives every glibc allocation over 4 MiB (decoded frames of large
/// photos, which [`img_proxy::allocator`] leaves to glibc, and the C
/// codecs' own buffers) its own mapping, returned to the system when freed.
///
/// glibc raises its mmap threshold after the first such buffer is freed and
/// then serves later frames from its per-thread arenas, where overlapping
/// decodes fragment the heap. Measured with 32 simultaneous 6 MP
/// transforms on a 2-thread pool: the worker's peak grew by 252 MB with
/// glibc's default, 106 MB (the two decodes the pool allows) with a fixed
/// threshold. Setting the threshold also turns the adjustment off. 4 MiB,
/// not lower: the frames of ordinary thumbnails (a 2560 px photo decoded at
/// 1/2 is 3 MB) stay in the arenas, where reusing them saves page faults
/// (1 MiB made the 800 px WebP benchmark batch 4% slower; 4 MiB, 0%).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    const MMAP_THRESHOLD: libc::c_int = img_proxy::allocator::LARGE as libc::c_int;
    // SAFETY: mallopt only changes allocator parameters; it is called
    // first thing in main, before any other thread exists. A zero return
    // (refused) leaves glibc's defaults, which are merely less frugal.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Other allocators need no tuning here.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

/// Logs go to stderr, as text for people or JSON for log pipelines;
/// `RUST_LOG` overrides the default `info` level.
fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a person at a terminal: in `docker logs`, files
    // and log pipelines they are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if config.json_logs {
        builder.json().init();
    } else {
        builder.init();
    }
}
