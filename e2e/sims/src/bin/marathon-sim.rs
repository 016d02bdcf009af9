//! `marathon` stand-in: takes Marathon's flags (and `MARATHON_*` variables).

use mesos_sims::marathon::{self, config::MarathonConfig};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match MarathonConfig::load(args, std::env::vars().collect()) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let level = cfg
        .values
        .get("logging_level")
        .map(|l| l.to_uppercase())
        .unwrap_or_default();
    mesos_sims::init_logging(&level, false);
    if let Err(e) = marathon::run(cfg).await {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
