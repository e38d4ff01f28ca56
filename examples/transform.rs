//! Development front end for the pipeline's `transform` command, until the
//! lead wires `img-proxy transform` into the main binary. Used by the
//! benchmark when `target/release/img-proxy transform` is not available.

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: img_proxy::pipeline::cli::TransformArgs,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = img_proxy::pipeline::cli::run(cli.args) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
