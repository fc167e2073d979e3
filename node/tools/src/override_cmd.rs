//! `traceo override`: set, replace (compare-and-set) or clear an analyst's override of a user's
//! verdicts.

use client::proto::{Action, AnalystOverride};
use client::{Client, ClientOptions};

use crate::SeedArgs;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ActionArg {
    Allow,
    Challenge,
    Block,
}

impl ActionArg {
    fn proto(self) -> i32 {
        match self {
            ActionArg::Allow => Action::Allow as i32,
            ActionArg::Challenge => Action::Challenge as i32,
            ActionArg::Block => Action::Block as i32,
        }
    }
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true)))]
#[command(group(clap::ArgGroup::new("compare").multiple(false)))]
pub struct OverrideArgs {
    /// The user whose verdicts to override.
    #[arg(long)]
    pub user: String,
    /// Every verdict for the user takes this action, whatever its score (needs --note).
    #[arg(long, value_enum, group = "what", requires = "note")]
    pub action: Option<ActionArg>,
    /// Why (a ticket, a name); quoted in the verdicts' `analyst_override` reason.
    #[arg(long)]
    pub note: Option<String>,
    /// Remove the override: verdicts follow the score again.
    #[arg(long, group = "what")]
    pub clear: bool,
    /// Only write if no override is set now (compare-and-set).
    #[arg(long, group = "compare")]
    pub if_none: bool,
    /// Only write if the override now set has this note (compare-and-set; with --if-action).
    #[arg(long, group = "compare", requires = "if_action", value_name = "NOTE")]
    pub if_note: Option<String>,
    /// The action the override now set must have (with --if-note).
    #[arg(long, value_enum, requires = "if_note")]
    pub if_action: Option<ActionArg>,
    #[command(flatten)]
    pub seeds: SeedArgs,
}

pub async fn run(a: OverrideArgs) -> anyhow::Result<()> {
    let value = match (a.clear, a.action, a.note) {
        (true, ..) => None,
        (false, Some(action), Some(note)) => Some(AnalystOverride { action: action.proto(), note }),
        _ => anyhow::bail!("give --action with --note, or --clear"),
    };
    let expected = match (a.if_none, a.if_note, a.if_action) {
        (true, ..) => Some(None),
        (false, Some(note), Some(action)) => Some(Some(AnalystOverride { action: action.proto(), note })),
        _ => None,
    };
    let client = Client::connect(a.seeds.seeds, ClientOptions::default()).await?;
    let r = client.set_override(&a.user, value, expected).await?;
    if r.applied {
        println!("override of {} written (shard {}, node {})", a.user, r.shard, r.served_by);
        return Ok(());
    }
    let now = match r.current {
        Some(o) => format!("{} ({})", Action::try_from(o.action).map_or("?", |x| x.as_str_name()), o.note),
        None => "no override".into(),
    };
    anyhow::bail!("not written: the override of {} is now {now}", a.user)
}
