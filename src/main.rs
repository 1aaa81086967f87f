//! `roamer`: the appliance binary. It wires configuration → platform → control plane and hosts
//! the operator's commands.

mod client;
mod control_socket;
mod daemon;
mod dataplane;
mod error;
mod instances;
mod lab;
mod load;
mod memory;
mod protocol;
mod run;
mod show_data;
mod trace;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use roamer_hal::Catalogue;
use tracing_subscriber::EnvFilter;

use crate::error::RoamerError;

#[derive(Debug, Parser)]
#[command(
    name = "roamer",
    version,
    about = "Virtual switch appliance for LISP VM mobility"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a configuration file: syntax, line-card admission, licences, every rule.
    /// Prints each problem as FILE:LINE: message and exits 2 if there is any.
    Validate {
        /// The configuration file (TOML or NX-OS CLI text; recognised from its content).
        file: PathBuf,
    },
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Start the appliance with a configuration; stops cleanly on SIGTERM or SIGINT.
    /// Under containerlab (CLAB_INTFS set) it first waits for the data interfaces.
    Run {
        /// The startup configuration file, TOML or CLI (`copy running-config startup-config`
        /// writes it) [default: /etc/roamer/startup-config, where containerlab binds it].
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The control socket (default: $ROAMER_SOCKET or /run/roamer/roamer.sock).
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Also serve peers whose primary group is this one (socket file 0660, owned by it).
        #[arg(long, value_name = "GROUP")]
        socket_group: Option<String>,
        /// What a startup configuration with errors does: `exit` (status 2, each problem as
        /// FILE:LINE) or `empty` (prints them, then runs with an empty configuration and leaves
        /// the file as it is: an appliance stays reachable instead of restarting in a loop).
        /// With `empty`, a missing file is an empty configuration too.
        #[arg(long, value_enum, default_value_t = ConfigErrorPolicy::Exit)]
        config_error: ConfigErrorPolicy,
    },
    /// Open an interactive NX-OS-style shell on the running daemon.
    Cli {
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Run commands on the running daemon, e.g. roamer exec "configure terminal; hostname a; end".
    Exec {
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Commands, separated by ';' or given as separate arguments.
        #[arg(required = true)]
        commands: Vec<String>,
    },
    /// Run containerlab topology files without containerlab or Docker (network namespaces).
    /// Without a subcommand: the across-subnet VM mobility demo, start to finish.
    Lab(lab::LabArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print a configuration file in the other syntax (canonical form; keys as type 7).
    Convert {
        /// The configuration file (TOML or NX-OS CLI text).
        file: PathBuf,
        /// The syntax to print.
        #[arg(long, value_enum)]
        to: SyntaxArg,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SyntaxArg {
    Toml,
    Cli,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("ROAMER_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// Prints an error for the operator: a configuration's problems one `FILE:LINE: message` each.
fn report(e: &RoamerError) {
    match e {
        RoamerError::Invalid { diagnostics, .. } => {
            for d in diagnostics {
                eprintln!("{d}");
            }
        }
        other => eprintln!("roamer: {other}"),
    }
}

/// `roamer run --config-error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ConfigErrorPolicy {
    Exit,
    Empty,
}

fn dispatch(command: Command) -> Result<(), RoamerError> {
    let catalogue = Catalogue::builtin()?;
    match command {
        Command::Validate { file } => {
            let loaded = load::load(&file, &catalogue)?;
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            println!(
                "{} {}",
                loaded.plan.summary(&loaded.config.hostname),
                load::describe(&loaded.config)
            );
            Ok(())
        }
        Command::Config(ConfigCommand::Convert { file, to }) => {
            let loaded = load::load(&file, &catalogue)?;
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            let syntax = match to {
                SyntaxArg::Toml => roamer_control::config::Syntax::Toml,
                SyntaxArg::Cli => roamer_control::config::Syntax::Cli,
            };
            print!("{}", roamer_control::config::render(&loaded.config, syntax));
            Ok(())
        }
        Command::Run {
            config,
            socket,
            socket_group,
            config_error,
        } => {
            let config = lab::container::startup_config(config);
            let group = socket_group
                .map(|g| control_socket::SocketGroup::lookup(&g))
                .transpose()?;
            let loaded = match (load::load(&config, &catalogue), config_error) {
                (Ok(loaded), _) => loaded,
                (Err(e), ConfigErrorPolicy::Exit) => return Err(e),
                (Err(RoamerError::Read { source, .. }), ConfigErrorPolicy::Empty)
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    eprintln!(
                        "roamer: {}: no startup configuration yet; running with an empty one",
                        config.display()
                    );
                    load::check_text(&config, "", &catalogue)?
                }
                (Err(e), ConfigErrorPolicy::Empty) => {
                    report(&e);
                    eprintln!(
                        "roamer: {}: not used; running with an empty configuration (the file is \
                         left as it is: fix it and restart, or save the running one with \
                         `copy running-config startup-config`)",
                        config.display()
                    );
                    load::check_text(&config, "", &catalogue)?
                }
            };
            lab::container::wait_for_ports(&loaded.config)?;
            run::run(
                loaded,
                config,
                protocol::socket_path(socket),
                group,
                catalogue,
            )
        }
        Command::Cli { socket } => client::interactive(&protocol::socket_path(socket)),
        Command::Exec { socket, commands } => {
            client::exec(&protocol::socket_path(socket), &commands)
        }
        Command::Lab(args) => lab::dispatch(args),
    }
}
