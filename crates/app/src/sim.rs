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
    handle
        .sim
        .create_spreadsheet(google::NewSpreadsheet {
            spreadsheet_id: Some(SANDBOX_SPREADSHEET.into()),
            title: Some("Sandbox leads".into()),
            sheets: vec![google::NewTab { title: SANDBOX_TAB.into(), csv: Some(sandbox_leads_csv()), values: None }],
            ..Default::default()
        })
        .map_err(|e| anyhow::anyhow!("sandbox spreadsheet: {e}"))?;
    Ok((handle, settings))
}

/// The spreadsheet `serve --sandbox` seeds in the simulator.
pub const SANDBOX_SPREADSHEET: &str = "1SandboxLeadsSheet";
/// Its tab.
pub const SANDBOX_TAB: &str = "Leads";
/// The campaign `serve --sandbox` links that tab to.
pub const SANDBOX_CAMPAIGN: &str = "Sandbox sheet campaign";

/// 20 leads: `phone,name,notes` (the simulator decides each call's outcome
/// from its scenario's mix, so any valid number works; 555-01xx are fictional).
fn sandbox_leads_csv() -> String {
    const NAMES: [&str; 20] = [
        "Ada Lovelace",
        "Grace Hopper",
        "Alan Turing",
        "Edsger Dijkstra",
        "Barbara Liskov",
        "Donald Knuth",
        "Frances Allen",
        "John Backus",
        "Margaret Hamilton",
        "Ken Thompson",
        "Dennis Ritchie",
        "Radia Perlman",
        "Leslie Lamport",
        "Niklaus Wirth",
        "Adele Goldberg",
        "Tony Hoare",
        "Shafi Goldwasser",
        "Butler Lampson",
        "Jean Sammet",
        "Robin Milner",
    ];
    let mut csv = String::from("phone,name,notes\n");
    for (i, name) in NAMES.iter().enumerate() {
        let notes = if i % 3 == 0 { "called back last week" } else { "new lead" };
        csv.push_str(&format!("+1415555{:04},{name},{notes}\n", 100 + i));
    }
    csv
}

/// After `App::build` in sandbox mode: creates (if absent) the campaign
/// [`SANDBOX_CAMPAIGN`] and a link of the seeded tab to it, and prints how to
/// watch the loop. The campaign is left in draft: starting it is the user's call.
pub async fn sandbox_sheet_link(state: &crate::AppState, sim: &SimHandle) -> anyhow::Result<()> {
    use switchboard_domain::sheet::SheetLinkInput;
    use switchboard_domain::{CampaignInput, SheetLink};
    use switchboard_storage::PageRequest;
    let store = &state.store;
    let now = switchboard_domain::time::now_ms();
    let mut campaign = None;
    let mut page = PageRequest { limit: 200, cursor: None };
    loop {
        let p = store.list_campaigns(&[], &page).await?;
        campaign = campaign.or_else(|| p.items.into_iter().find(|c| c.name == SANDBOX_CAMPAIGN));
        match p.next_cursor {
            Some(c) if campaign.is_none() => page.cursor = Some(c),
            _ => break,
        }
    }
    let campaign = match campaign {
        Some(c) => c,
        None => {
            let input: CampaignInput = serde_json::from_value(serde_json::json!({
                "name": SANDBOX_CAMPAIGN,
                "description": "Leads from the simulator's spreadsheet 1SandboxLeadsSheet (tab Leads)",
                "agent": {"agent_id": "agent_sandbox", "caller_id": "+15005550001"},
                // Any time: the sandbox should call whenever it is tried.
                "schedule": {"windows": []},
            }))?;
            let c = input.apply(None, now).map_err(|e| anyhow::anyhow!("sandbox campaign: {e:?}"))?;
            store.insert_campaign(&c).await?;
            c
        }
    };
    let mut link = None;
    let mut page = PageRequest { limit: 200, cursor: None };
    loop {
        let p = store.list_sheet_links(&page).await?;
        link = link
            .or_else(|| p.items.into_iter().find(|l| l.spreadsheet_id == SANDBOX_SPREADSHEET && l.tab == SANDBOX_TAB));
        match p.next_cursor {
            Some(c) if link.is_none() => page.cursor = Some(c),
            _ => break,
        }
    }
    let link = match link {
        Some(l) => l,
        None => {
            let input = SheetLinkInput {
                spreadsheet: Some(SANDBOX_SPREADSHEET.into()),
                tab: Some(SANDBOX_TAB.into()),
                campaign_id: Some(campaign.id.to_string()),
                poll_secs: Some(5),
                ..Default::default()
            };
            let l = SheetLink::create(input, now).map_err(|e| anyhow::anyhow!("sandbox sheet link: {e:?}"))?;
            store.insert_sheet_link(&l).await?;
            l
        }
    };
    let api = state.settings.public_base();
    println!(
        "sandbox: sheet link {} binds spreadsheet {SANDBOX_SPREADSHEET} (tab {SANDBOX_TAB}, 20 leads) to campaign {} ({SANDBOX_CAMPAIGN}); \
         watch the sheet with `curl {}/__sim/google/spreadsheets/{SANDBOX_SPREADSHEET}` or the link with \
         `curl -H \"Authorization: Bearer $TOKEN\" {api}/api/v1/sheet-links/{}`; start calling with \
         `curl -X POST -H \"Authorization: Bearer $TOKEN\" {api}/api/v1/campaigns/{}/start` (dialer enabled)",
        link.id, campaign.id, sim.base_url, link.id, campaign.id
    );
    Ok(())
}
