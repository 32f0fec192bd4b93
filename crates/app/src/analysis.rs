//! Our own conversation analysis (sentiment, keywords, entities) applied to a
//! stored transcript: the pure analyser is `switchboard-analysis`; here it is
//! fed a transcript and its result stored beside ElevenLabs' own analysis,
//! stamped with the analyser's version so `switchboard analyze --since …`
//! can re-run a newer analyser over old transcripts.

use switchboard_analysis::{ANALYZER_VERSION, Gazetteers, Role, Transcript as Input, Turn, analyze};
use switchboard_domain::Transcript;

/// Analyses `t` in place with no gazetteers (no-op when it is already analysed by this version).
pub fn apply(t: &mut Transcript) {
    apply_with(t, &Gazetteers::default());
}

/// Analyses `t` in place, marking the names of `gazetteers` (no-op when it is
/// already analysed by this version).
pub fn apply_with(t: &mut Transcript, gazetteers: &Gazetteers) {
    if t.analyzer_version == Some(ANALYZER_VERSION) && t.analysis.is_some() {
        return;
    }
    let input = Input {
        turns: t
            .turns
            .iter()
            .map(|turn| Turn {
                role: if turn.role == "user" { Role::User } else { Role::Agent },
                message: turn.message.clone(),
                time_in_call_secs: turn.time_in_call_secs,
            })
            .collect(),
        phone_region: Some("US".into()),
    };
    let a = analyze(&input, gazetteers);
    t.sentiment = Some(a.sentiment.overall.compound);
    t.analyzer_version = Some(a.analyzer_version);
    t.analysis = serde_json::to_value(&a).ok();
}

/// Whether a stored transcript needs (re-)analysis by this analyser.
pub fn stale(t: &Transcript) -> bool {
    t.analyzer_version != Some(ANALYZER_VERSION) || t.analysis.is_none()
}
