//! `cloudlet publish TOPIC`: a one-way message to every function of the env
//! that subscribes to the topic.

use cloudlet_core::EnvId;

use super::Global;

#[derive(clap::Args, Debug)]
pub struct PublishArgs {
    /// The topic, its levels separated by `/` (`sensors/kitchen/temp`).
    pub topic: String,

    /// The message, as JSON (default: `{}`).
    #[arg(long, short = 'd', value_name = "JSON")]
    pub data: Option<String>,

    #[arg(long, default_value = "default")]
    pub env: EnvId,
}

pub async fn run(global: &Global, args: PublishArgs) -> anyhow::Result<()> {
    let message = args.data.unwrap_or_else(|| "{}".to_owned());
    let published = global
        .client()?
        .publish(&args.env, &args.topic, message)
        .await?;
    println!(
        "{}  {} deliveries",
        published["messageId"].as_str().unwrap_or_default(),
        published["deliveries"]
    );
    Ok(())
}
