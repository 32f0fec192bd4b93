//! The simulator (developer tooling; its own crate, `switchboard-sim`) and
//! the one piece of it that needs the service's settings: wiring `serve
//! --sandbox` to a simulator started in-process.

pub use switchboard_sim::*;

/// Starts a simulator on a random loopback port and returns settings wired to
/// it: provider base URLs, the simulator's credentials (so its signatures
/// verify) and the ElevenLabs webhook pointed at this server.
pub async fn sandbox(mut settings: crate::config::Settings) -> anyhow::Result<(SimHandle, crate::config::Settings)> {
    use crate::config::Secret;
    let sim = SimSettings {
        elevenlabs_webhook_url: Some(format!("{}/webhooks/elevenlabs", settings.public_base())),
        ..SimSettings::default()
    };
    settings.twilio.account_sid = Some(sim.account_sid.clone());
    settings.twilio.auth_token = Some(Secret::new(sim.auth_token.clone()));
    settings.elevenlabs.api_key = Some(Secret::new(sim.elevenlabs_api_key.clone()));
    settings.elevenlabs.webhook_secret = Some(Secret::new(sim.elevenlabs_webhook_secret.clone()));
    let handle = Simulator::spawn(sim, "127.0.0.1:0".parse().expect("literal address")).await?;
    settings.twilio.api_base = handle.base_url.clone();
    settings.elevenlabs.api_base = handle.base_url.clone();
    settings.google.sheets_api_base = handle.base_url.clone();
    settings.google.drive_api_base = handle.base_url.clone();
    let mut key: serde_json::Value =
        serde_json::from_str(switchboard_sim::google::SANDBOX_KEY_JSON).expect("the sandbox key is JSON");
    key["token_uri"] = format!("{}/token", handle.base_url).into();
    settings.google.credentials_json = Some(Secret::new(key.to_string()));
    settings.google.credentials_file = None;
    Ok((handle, settings))
}
