//! `traceo feedback`: an analyst's word about a user, written to the user's profile.

use client::proto::feedback_request::Kind;
use client::proto::MarkEvent;
use client::{Client, ClientOptions};

use crate::SeedArgs;

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true)))]
pub struct FeedbackArgs {
    /// The user the feedback is about.
    #[arg(long)]
    pub user: String,
    /// Confirm an event of the user as an attack: the user's later events score higher for 7 days.
    #[arg(long, value_name = "EVENT_ID", group = "what")]
    pub malicious: Option<String>,
    /// Mark an event of the user benign (clears a malicious mark of the same event).
    #[arg(long, value_name = "EVENT_ID", group = "what")]
    pub benign: Option<String>,
    /// Trust a device for the user: it never counts as new.
    #[arg(long, value_name = "DEVICE_ID", group = "what")]
    pub trust_device: Option<String>,
    /// Trust a country (ISO 3166 alpha-2) for the user: it never counts as new.
    #[arg(long, value_name = "CC", group = "what")]
    pub trust_country: Option<String>,
    #[command(flatten)]
    pub seeds: SeedArgs,
}

pub async fn run(a: FeedbackArgs) -> anyhow::Result<()> {
    let kind = match (a.malicious, a.benign, a.trust_device, a.trust_country) {
        (Some(event_id), ..) => Kind::MarkEvent(MarkEvent { event_id, malicious: true }),
        (_, Some(event_id), ..) => Kind::MarkEvent(MarkEvent { event_id, malicious: false }),
        (_, _, Some(device), _) => Kind::TrustDevice(device),
        (_, _, _, Some(country)) => Kind::TrustCountry(country),
        _ => anyhow::bail!("give one of --malicious, --benign, --trust-device, --trust-country"),
    };
    let client = Client::connect(a.seeds.seeds, ClientOptions::default()).await?;
    let r = client.feedback(&a.user, kind).await?;
    println!("recorded in the profile of {} (shard {}, node {})", a.user, r.shard, r.served_by);
    Ok(())
}
