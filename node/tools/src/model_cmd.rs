//! `traceo model deploy|promote|clear-shadow|rollback|status`: the scoring-model lifecycle of a
//! running cluster.

use std::path::PathBuf;

use client::proto::{ModelAction, ModelsResponse};
use client::{Client, ClientOptions};

use crate::SeedArgs;

#[derive(clap::Subcommand, Debug)]
pub enum ModelCommands {
    /// Deploy the bundle in DIR (manifest.json, iforest.onnx, autoencoder.onnx, gbt.onnx, as
    /// written by `scoring/train/run`) to every node, without a restart.
    Deploy(DeployArgs),
    /// Make the shadow version live.
    Promote(SeedOnly),
    /// Stop scoring with the shadow version.
    ClearShadow(SeedOnly),
    /// Make the previous live version live again.
    Rollback(SeedOnly),
    /// The deployed versions, and what each node runs.
    Status(SeedOnly),
}

#[derive(clap::Args, Debug)]
pub struct DeployArgs {
    /// Directory with the bundle's four files.
    pub dir: PathBuf,
    /// Score beside the live version (reported as shadow_score), never acting on it.
    #[arg(long)]
    pub shadow: bool,
    #[command(flatten)]
    pub seeds: SeedArgs,
}

#[derive(clap::Args, Debug)]
pub struct SeedOnly {
    #[command(flatten)]
    pub seeds: SeedArgs,
}

fn or_builtin(v: &str, builtin: &str) -> String {
    if v.is_empty() {
        format!("built-in ({builtin})")
    } else {
        v.to_owned()
    }
}

fn print_registry(r: &ModelsResponse) {
    println!("live:    {}", or_builtin(&r.live, &r.builtin_version));
    println!("shadow:  {}", if r.shadow.is_empty() { "none" } else { &r.shadow });
    let history: Vec<String> = r.history.iter().rev().map(|h| or_builtin(h, &r.builtin_version)).collect();
    println!("rollback to: {}", if history.is_empty() { "nothing".to_owned() } else { history.join(", then ") });
    for m in &r.stored {
        let at = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(m.deployed_at_ms.max(0) as u64),
        );
        println!("  stored {:<24} {:>9} bytes  digest {}  deployed {at}", m.version, m.bytes, m.digest);
    }
}

pub async fn run(cmd: ModelCommands) -> anyhow::Result<()> {
    let (seeds, action) = match cmd {
        ModelCommands::Deploy(a) => {
            let files = convert::bundle_to_proto(crate::eval::read_bundle(&a.dir)?);
            let client = Client::connect(a.seeds.seeds, ClientOptions::default()).await?;
            let r = client.deploy_model(files, a.shadow).await?;
            println!("deployed; node {} now scores with {}", r.node_id, r.installed_live);
            print_registry(&r);
            return Ok(());
        }
        ModelCommands::Promote(s) => (s.seeds, ModelAction::Promote),
        ModelCommands::ClearShadow(s) => (s.seeds, ModelAction::ClearShadow),
        ModelCommands::Rollback(s) => (s.seeds, ModelAction::Rollback),
        ModelCommands::Status(s) => {
            let client = Client::connect(s.seeds.seeds, ClientOptions::default()).await?;
            let answers = client.models_all().await;
            let Some(first) = answers.iter().find_map(|(_, r)| r.as_ref().ok()) else {
                anyhow::bail!("no node answered");
            };
            print_registry(first);
            println!("nodes:");
            for (addr, r) in &answers {
                match r {
                    Ok(m) => {
                        let shadow = if m.installed_shadow.is_empty() { "-" } else { &m.installed_shadow };
                        println!("  node {} {addr}: live {}  shadow {shadow}", m.node_id, m.installed_live);
                    }
                    Err(e) => println!("  {addr}: error {}", e.message()),
                }
            }
            return Ok(());
        }
    };
    let client = Client::connect(seeds.seeds, ClientOptions::default()).await?;
    let r = client.model_action(action).await?;
    print_registry(&r);
    Ok(())
}
