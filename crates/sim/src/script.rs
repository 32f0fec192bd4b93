//! What a simulated call does: its outcome, timings and the exact list of
//! webhooks it sends, computed up front from the scenario and the call's
//! index, so a seed reproduces a run and tests can assert the sequence.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Relative weights of call outcomes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutcomeMix {
    /// A person answers and talks to the agent.
    pub human: f64,
    /// Voicemail answers (AMD `machine_end_beep`).
    pub voicemail: f64,
    /// Busy (SIP 486).
    pub busy: f64,
    /// Rings out (SIP 487).
    pub no_answer: f64,
    /// Cannot be placed (SIP 404).
    pub failed: f64,
}

impl Default for OutcomeMix {
    fn default() -> Self {
        OutcomeMix { human: 0.55, voicemail: 0.15, busy: 0.08, no_answer: 0.17, failed: 0.05 }
    }
}

/// Faults injected on demand (rates are probabilities per request or per webhook).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// REST requests answered 500/503.
    pub api_5xx_rate: f64,
    /// REST requests answered 429.
    pub api_429_rate: f64,
    /// `Retry-After` seconds on those 429s (none when unset).
    pub retry_after_secs: Option<f64>,
    /// Extra delay on every REST reply (ms).
    pub slow_ms: u64,
    /// Webhooks delivered twice.
    pub duplicate_rate: f64,
    /// Calls whose last two status callbacks arrive in swapped order.
    pub reorder_rate: f64,
    /// ElevenLabs post-call webhooks never sent (reconcile through the list API).
    pub drop_elevenlabs_rate: f64,
    /// Twilio callbacks (status, AMD, recording) never sent; the call still
    /// plays out (reconcile through `GET Calls/{sid}`). Lost status callbacks
    /// leave gaps in the `SequenceNumber`s, as lost requests do.
    pub drop_twilio_rate: f64,
    /// Webhooks signed with a wrong key.
    pub bad_signature_rate: f64,
}

/// A scenario: everything that shapes a simulated run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Scenario {
    /// Random seed: the same seed and calls give the same outcomes and webhooks.
    pub seed: u64,
    /// Simulated seconds per real second (60 = an hour of calls in a minute).
    pub time_scale: f64,
    /// Outcome weights.
    pub outcomes: OutcomeMix,
    /// Ring time range (simulated seconds).
    pub ring_secs: [f64; 2],
    /// Talk time range for answered calls (simulated seconds).
    pub talk_secs: [f64; 2],
    /// Calls in progress at once; more wait in the queue.
    pub max_concurrency: usize,
    /// Calls started per second (Twilio's default is 1); more are queued.
    pub cps: f64,
    /// Injected faults.
    pub faults: Faults,
    /// Google token lifetime, quota and token-endpoint failures.
    pub google: super::google::GoogleScenario,
    /// Also send ElevenLabs `post_call_audio` webhooks (base64 MP3) after the
    /// transcription of an answered call (off by default, as on a workspace
    /// without audio webhooks).
    pub post_call_audio: bool,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            seed: 1,
            time_scale: 60.0,
            outcomes: OutcomeMix::default(),
            ring_secs: [3.0, 20.0],
            talk_secs: [20.0, 180.0],
            max_concurrency: 100,
            cps: 1.0,
            faults: Faults::default(),
            google: super::google::GoogleScenario::default(),
            post_call_audio: false,
        }
    }
}

/// How a call ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Answered by a person.
    Human,
    /// Answered by voicemail.
    Voicemail,
    /// Busy.
    Busy,
    /// Not answered.
    NoAnswer,
    /// Failed.
    Failed,
}

/// One webhook of the script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Simulated seconds after the call starts.
    pub at_secs: f64,
    /// `status`, `amd`, `recording`, `elevenlabs`.
    pub kind: String,
    /// CallStatus for status callbacks, AnsweredBy for AMD, webhook type for ElevenLabs.
    pub value: String,
    /// Twilio `SequenceNumber` for status callbacks.
    pub sequence: Option<u32>,
    /// Signed with a wrong key (fault).
    pub bad_signature: bool,
}

/// What the script decided for a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Script {
    /// Outcome.
    pub outcome: Outcome,
    /// Ring seconds.
    pub ring_secs: f64,
    /// Talk seconds (0 when not answered).
    pub talk_secs: f64,
    /// Webhooks in delivery order.
    pub steps: Vec<Step>,
}

/// What the placement asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Wants {
    /// Subscribed `StatusCallbackEvent`s (empty = only `completed`).
    pub events: Vec<String>,
    /// A status callback URL was given.
    pub status_callback: bool,
    /// Async AMD with a callback URL.
    pub amd: bool,
    /// Recording with a callback URL.
    pub recording: bool,
    /// Answering-machine detection requested (`MachineDetection`, sync or async):
    /// the call resource gets `answered_by` even without an AMD callback.
    pub machine_detection: bool,
    /// `Record=true`: the call is recorded (with or without a callback).
    pub record: bool,
    /// An ElevenLabs conversation is attached (register-call TwiML or native outbound call).
    pub conversation: bool,
}

/// A change of the call's own state: what `GET Calls/{sid}` and the
/// conversation show, whichever callbacks are subscribed or delivered.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// The destination rings.
    Ringing,
    /// Answered (`in-progress`; the conversation starts).
    Answered,
    /// The AMD result is known.
    AnsweredBy(&'static str),
    /// The call ended with this Twilio status.
    Ended(&'static str),
    /// The recording is complete and listed.
    Recorded,
    /// The conversation is analysed (`done`) or `failed`.
    ConversationFinal,
}

/// When ringing starts, when it is answered, and when the call ends (simulated seconds).
fn times(outcome: Outcome, ring: f64, talk: f64) -> (Option<f64>, Option<f64>, f64) {
    match outcome {
        Outcome::Failed => (None, None, 1.0),
        Outcome::Busy => (Some(1.0), None, 1.0 + ring.min(3.0)),
        Outcome::NoAnswer => (Some(1.0), None, 1.0 + ring),
        Outcome::Human | Outcome::Voicemail => (Some(1.0), Some(1.0 + ring), 1.0 + ring + talk),
    }
}

impl Script {
    /// The call's state changes in time order (independent of callbacks and faults).
    pub fn lifecycle(&self, wants: &Wants) -> Vec<(f64, Phase)> {
        let (ringing, answer, end) = times(self.outcome, self.ring_secs, self.talk_secs);
        let mut out = Vec::new();
        if let Some(t) = ringing {
            out.push((t, Phase::Ringing));
        }
        if let Some(t) = answer {
            out.push((t, Phase::Answered));
            if wants.machine_detection {
                let v = if self.outcome == Outcome::Human { "human" } else { "machine_end_beep" };
                out.push((t + 2.4, Phase::AnsweredBy(v)));
            }
        }
        out.push((
            end,
            Phase::Ended(match self.outcome {
                Outcome::Human | Outcome::Voicemail => "completed",
                Outcome::Busy => "busy",
                Outcome::NoAnswer => "no-answer",
                Outcome::Failed => "failed",
            }),
        ));
        if answer.is_some() && wants.record {
            out.push((end + 2.0, Phase::Recorded));
        }
        if wants.conversation {
            out.push((end + 5.0, Phase::ConversationFinal));
        }
        out
    }
}

fn rng_for(seed: u64, index: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn pick(mix: &OutcomeMix, x: f64) -> Outcome {
    let total = (mix.human + mix.voicemail + mix.busy + mix.no_answer + mix.failed).max(f64::MIN_POSITIVE);
    let mut x = x * total;
    for (w, o) in [
        (mix.human, Outcome::Human),
        (mix.voicemail, Outcome::Voicemail),
        (mix.busy, Outcome::Busy),
        (mix.no_answer, Outcome::NoAnswer),
    ] {
        if x < w {
            return o;
        }
        x -= w;
    }
    Outcome::Failed
}

fn between(rng: &mut StdRng, r: [f64; 2]) -> f64 {
    let (a, b) = (r[0].min(r[1]), r[0].max(r[1]));
    if a == b { a } else { rng.random_range(a..b) }
}

/// The script of call number `index` under `scenario`.
pub fn script(scenario: &Scenario, index: u64, wants: &Wants) -> Script {
    let mut rng = rng_for(scenario.seed, index);
    let outcome = pick(&scenario.outcomes, rng.random::<f64>());
    let ring = (between(&mut rng, scenario.ring_secs) * 10.0).round() / 10.0;
    let answered = matches!(outcome, Outcome::Human | Outcome::Voicemail);
    let talk = match outcome {
        Outcome::Human => (between(&mut rng, scenario.talk_secs)).round(),
        Outcome::Voicemail => (between(&mut rng, [8.0, 25.0])).round(),
        _ => 0.0,
    };
    let f = &scenario.faults;
    let subscribed =
        |e: &str| if wants.events.is_empty() { e == "completed" } else { wants.events.iter().any(|x| x == e) };
    let mut steps = Vec::new();
    let mut seq = 0u32;
    let mut status = |steps: &mut Vec<Step>, at: f64, event: &str, value: &str| {
        // SequenceNumber counts the events Twilio sends, subscribed ones only.
        if wants.status_callback && subscribed(event) {
            steps.push(Step {
                at_secs: at,
                kind: "status".into(),
                value: value.into(),
                sequence: Some(seq),
                bad_signature: false,
            });
            seq += 1;
        }
    };
    status(&mut steps, 0.0, "initiated", "initiated");
    let (ringing, answer, end) = times(outcome, ring, talk);
    if let Some(t) = ringing {
        status(&mut steps, t, "ringing", "ringing");
    }
    match outcome {
        Outcome::Failed => status(&mut steps, end, "completed", "failed"),
        Outcome::Busy => status(&mut steps, end, "completed", "busy"),
        Outcome::NoAnswer => status(&mut steps, end, "completed", "no-answer"),
        Outcome::Human | Outcome::Voicemail => {
            let answer = answer.unwrap_or(end);
            status(&mut steps, answer, "answered", "in-progress");
            if wants.amd {
                let v = if outcome == Outcome::Human { "human" } else { "machine_end_beep" };
                steps.push(Step {
                    at_secs: answer + 2.4,
                    kind: "amd".into(),
                    value: v.into(),
                    sequence: None,
                    bad_signature: false,
                });
            }
            status(&mut steps, end, "completed", "completed");
            if wants.recording {
                steps.push(Step {
                    at_secs: end + 2.0,
                    kind: "recording".into(),
                    value: "completed".into(),
                    sequence: None,
                    bad_signature: false,
                });
            }
        }
    }
    if wants.conversation {
        let kind = if answered { "post_call_transcription" } else { "call_initiation_failure" };
        let dropped = answered && rng.random::<f64>() < f.drop_elevenlabs_rate;
        if !dropped {
            steps.push(Step {
                at_secs: end + 5.0,
                kind: "elevenlabs".into(),
                value: kind.into(),
                sequence: None,
                bad_signature: false,
            });
            if answered && scenario.post_call_audio {
                steps.push(Step {
                    at_secs: end + 6.0,
                    kind: "elevenlabs".into(),
                    value: "post_call_audio".into(),
                    sequence: None,
                    bad_signature: false,
                });
            }
        }
    }
    // Faults on delivery, decided per call in a fixed order so a seed reproduces them.
    if rng.random::<f64>() < f.reorder_rate {
        let statuses: Vec<usize> =
            steps.iter().enumerate().filter(|(_, s)| s.kind == "status").map(|(i, _)| i).collect();
        if let [.., a, b] = statuses[..] {
            let (ta, tb) = (steps[a].at_secs, steps[b].at_secs);
            steps.swap(a, b);
            steps[a].at_secs = ta;
            steps[b].at_secs = tb;
        }
    }
    let mut out = Vec::with_capacity(steps.len() + 2);
    for mut s in steps {
        // Drawn only when asked for, so existing seeds replay their other faults unchanged.
        if f.drop_twilio_rate > 0.0 && s.kind != "elevenlabs" && rng.random::<f64>() < f.drop_twilio_rate {
            continue;
        }
        s.bad_signature = rng.random::<f64>() < f.bad_signature_rate;
        let dup = rng.random::<f64>() < f.duplicate_rate;
        out.push(s.clone());
        if dup {
            out.push(Step { bad_signature: false, ..s });
        }
    }
    Script { outcome, ring_secs: ring, talk_secs: talk, steps: out }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_events() -> Wants {
        Wants {
            events: vec!["initiated".into(), "ringing".into(), "answered".into(), "completed".into()],
            status_callback: true,
            amd: true,
            recording: true,
            machine_detection: true,
            record: true,
            conversation: true,
        }
    }

    fn only(outcome: &str) -> Scenario {
        let mut s = Scenario {
            outcomes: OutcomeMix { human: 0.0, voicemail: 0.0, busy: 0.0, no_answer: 0.0, failed: 0.0 },
            ..Scenario::default()
        };
        match outcome {
            "human" => s.outcomes.human = 1.0,
            "busy" => s.outcomes.busy = 1.0,
            "no_answer" => s.outcomes.no_answer = 1.0,
            _ => s.outcomes.failed = 1.0,
        }
        s
    }

    fn seq(s: &Script) -> Vec<String> {
        s.steps
            .iter()
            .map(|x| format!("{}:{}{}", x.kind, x.value, x.sequence.map(|n| format!("#{n}")).unwrap_or_default()))
            .collect()
    }

    #[test]
    fn an_answered_call_sends_the_full_sequence_in_order() {
        let s = script(&only("human"), 0, &all_events());
        assert_eq!(
            seq(&s),
            [
                "status:initiated#0",
                "status:ringing#1",
                "status:in-progress#2",
                "amd:human",
                "status:completed#3",
                "recording:completed",
                "elevenlabs:post_call_transcription"
            ]
        );
        assert!(s.steps.windows(2).all(|w| w[0].at_secs <= w[1].at_secs));
    }

    #[test]
    fn unanswered_outcomes_end_with_their_terminal_status_and_a_failure_webhook() {
        assert_eq!(
            seq(&script(&only("busy"), 0, &all_events())),
            ["status:initiated#0", "status:ringing#1", "status:busy#2", "elevenlabs:call_initiation_failure"]
        );
        assert_eq!(
            seq(&script(&only("no_answer"), 0, &all_events())),
            ["status:initiated#0", "status:ringing#1", "status:no-answer#2", "elevenlabs:call_initiation_failure"]
        );
        assert_eq!(
            seq(&script(&only("failed"), 0, &Wants { status_callback: true, ..Default::default() })),
            ["status:failed#0"]
        );
    }

    #[test]
    fn the_same_seed_reproduces_the_same_run_and_another_seed_differs() {
        let sc = Scenario::default();
        let a: Vec<Script> = (0..50).map(|i| script(&sc, i, &all_events())).collect();
        let b: Vec<Script> = (0..50).map(|i| script(&sc, i, &all_events())).collect();
        assert_eq!(a, b);
        let other = Scenario { seed: 2, ..Scenario::default() };
        let c: Vec<Script> = (0..50).map(|i| script(&other, i, &all_events())).collect();
        assert_ne!(a, c);
        let humans = a.iter().filter(|s| s.outcome == Outcome::Human).count();
        assert!((15..=40).contains(&humans), "about 55 % human, got {humans}/50");
    }

    #[test]
    fn faults_duplicate_reorder_and_drop_webhooks() {
        let mut sc = only("human");
        sc.faults.reorder_rate = 1.0;
        sc.faults.duplicate_rate = 1.0;
        sc.faults.drop_elevenlabs_rate = 1.0;
        let s = script(&sc, 0, &all_events());
        let statuses: Vec<String> = s.steps.iter().filter(|x| x.kind == "status").map(|x| x.value.clone()).collect();
        assert_eq!(
            statuses,
            ["initiated", "initiated", "ringing", "ringing", "completed", "completed", "in-progress", "in-progress"]
        );
        assert!(!s.steps.iter().any(|x| x.kind == "elevenlabs"), "the post-call webhook is dropped");
    }

    #[test]
    fn dropped_twilio_callbacks_leave_sequence_gaps_and_the_same_seed_replays_other_faults() {
        let mut sc = only("human");
        sc.faults.drop_twilio_rate = 1.0;
        let s = script(&sc, 0, &all_events());
        assert_eq!(seq(&s), ["elevenlabs:post_call_transcription"], "every Twilio callback lost");
        sc.faults.drop_twilio_rate = 0.0;
        sc.faults.duplicate_rate = 0.5;
        let before = Scenario { faults: Faults { duplicate_rate: 0.5, ..Faults::default() }, ..only("human") };
        assert_eq!(script(&sc, 3, &all_events()), script(&before, 3, &all_events()));
    }

    #[test]
    fn the_lifecycle_does_not_depend_on_subscriptions_and_audio_webhooks_are_opt_in() {
        let sc = only("human");
        let s = script(&sc, 0, &Wants { conversation: true, ..Default::default() });
        assert_eq!(seq(&s), ["elevenlabs:post_call_transcription"]);
        let phases: Vec<Phase> = s.lifecycle(&all_events()).into_iter().map(|(_, p)| p).collect();
        assert_eq!(
            phases,
            [
                Phase::Ringing,
                Phase::Answered,
                Phase::AnsweredBy("human"),
                Phase::Ended("completed"),
                Phase::Recorded,
                Phase::ConversationFinal
            ]
        );
        let busy = script(&only("busy"), 0, &Wants::default());
        assert_eq!(busy.lifecycle(&Wants::default()).last().map(|p| p.1.clone()), Some(Phase::Ended("busy")));
        let audio = Scenario { post_call_audio: true, ..only("human") };
        assert_eq!(
            seq(&script(&audio, 0, &Wants { conversation: true, ..Default::default() })),
            ["elevenlabs:post_call_transcription", "elevenlabs:post_call_audio"]
        );
    }
}
