"""Drives the simulator with the official Python SDKs (twilio, elevenlabs, gspread).

Run by the Rust test `sim::the_official_python_sdks_work_against_the_simulator`
(skipped with one line when the packages are absent):

    python3 check_sdks.py <simulator base url> <service-account key file>

Exits non-zero with an assertion message on the first mismatch.
"""

import datetime
import json
import sys
import time
import urllib.request

import gspread
import requests
from elevenlabs.client import ElevenLabs
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

BASE, KEY_PATH = sys.argv[1], sys.argv[2]
ACCOUNT, TOKEN = "AC00000000000000000000000000000001", "sandbox-twilio-auth-token-0000000"


def control(method, path, body):
    req = urllib.request.Request(BASE + path, method=method, headers={"content-type": "application/json"},
                                 data=json.dumps(body).encode())
    return json.loads(urllib.request.urlopen(req).read() or b"null")


def wait(predicate, what):
    for _ in range(300):
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


control("PUT", "/__sim/scenario", {"seed": 5, "time_scale": 3000, "cps": 100,
                                   "outcomes": {"human": 1, "voicemail": 0, "busy": 0, "no_answer": 0, "failed": 0}})

# ---- Twilio ----
tw = Client(ACCOUNT, TOKEN)
tw.api.base_url = BASE
call = tw.calls.create(to="+15005550006", from_="+15005550001", url="http://sb.invalid/twiml",
                       machine_detection="Enable", async_amd="True", record=True)
assert call.status == "queued" and call.to_formatted == "(500) 555-0006" and call.api_version == "2010-04-01", call
others = [tw.calls.create(to=f"+1500555{i:04d}", from_="+15005550001", twiml="<Response/>").sid for i in range(4)]
terminal = ("completed", "busy", "no-answer", "failed", "canceled")
wait(lambda: tw.calls(call.sid).fetch().status in terminal, "the call to end")
done = tw.calls(call.sid).fetch()
assert done.status == "completed" and done.end_time is not None and int(done.duration) > 0, vars(done)
assert done.answered_by == "human" and done.date_updated >= done.date_created, vars(done)
assert abs((done.end_time - datetime.datetime.now(datetime.timezone.utc)).total_seconds()) < 30, done.end_time
assert done.subresource_uris["recordings"].endswith("/Recordings.json")
listed = tw.calls.list(page_size=2)
assert {call.sid, *others} <= {c.sid for c in listed}, "paging reaches every call"
assert len(tw.calls.list(to="+15005550006", status="completed")) == 1
since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
assert len(tw.calls.list(start_time_after=since)) == 5
recs = tw.calls(call.sid).recordings.list()
assert len(recs) == 1 and recs[0].status == "completed", recs
assert tw.recordings(recs[0].sid).fetch().call_sid == call.sid
assert [r.sid for r in tw.recordings.list(call_sid=call.sid)] == [recs[0].sid]
live = tw.calls.create(to="+15005550020", from_="+15005550001", url="http://x/t")
assert tw.calls(live.sid).update(status="completed").status in ("canceled", "completed")
try:
    tw.calls("CA00000000000000000000000000000000").fetch()
    raise AssertionError("a missing call must 404")
except TwilioRestException as e:
    assert e.status == 404 and e.code == 20404, e

# ---- ElevenLabs ----
el = ElevenLabs(api_key="sandbox-elevenlabs-api-key", base_url=BASE)
out = el.conversational_ai.twilio.outbound_call(agent_id="agent_sdk", agent_phone_number_id="phnum_sdk",
                                                to_number="+15005550007")
assert out.success and out.conversation_id and out.call_sid.startswith("CA"), out
twiml = el.conversational_ai.twilio.register_call(agent_id="agent_sdk", from_number="+15005550006",
                                                  to_number="+15005550001")
assert "conversation_id" in str(twiml)
wait(lambda: el.conversational_ai.conversations.get(out.conversation_id).status == "done", "the conversation")
conv = el.conversational_ai.conversations.get(out.conversation_id)
phone = conv.metadata.phone_call
assert phone.phone_number_id == "phnum_sdk" and phone.stream_sid and phone.call_sid == out.call_sid, phone
assert conv.has_audio and conv.has_user_audio and conv.has_response_audio and conv.analysis.call_successful == "success"
page = el.conversational_ai.conversations.list(page_size=10)
mine = next(c for c in page.conversations if c.conversation_id == out.conversation_id)
assert mine.message_count == len(conv.transcript) > 0 and mine.call_successful == "success", mine
assert b"".join(el.conversational_ai.conversations.audio.get(out.conversation_id))

# ---- Google (gspread) ----
_request = requests.Session.request


def to_simulator(self, method, url, *args, **kwargs):
    for host in ("https://sheets.googleapis.com", "https://www.googleapis.com"):
        if url.startswith(host):
            url = BASE + url[len(host):]
    return _request(self, method, url, *args, **kwargs)


requests.Session.request = to_simulator
key = json.load(open(KEY_PATH))
key["token_uri"] = BASE + "/token"
sid = control("POST", "/__sim/google/spreadsheets",
              {"title": "SDK check", "sheets": [{"title": "Leads", "csv": "id,phone\n1,+15005550006\n2,+15005550007\n"}]})["spreadsheet_id"]
gc = gspread.service_account_from_dict(key)
sh = gc.open("SDK check")
assert sh.id == sid and sh.locale == "en_US" and sh.timezone == "Etc/GMT"
ws = sh.worksheet("Leads")
assert ws.get_all_values() == [["id", "phone"], ["1", "+15005550006"], ["2", "+15005550007"]]
ws.append_row(["3", "+15005550008"], value_input_option="RAW")
assert ws.col_values(1) == ["id", "1", "2", "3"], ws.col_values(1)
ws.batch_clear(["B2:B3"])
assert ws.get("A1:B4") == [["id", "phone"], ["1"], ["2"], ["3", "+15005550008"]]
new = sh.add_worksheet(title="Results", rows=50, cols=5)
new.update_title("Results 2")
new.resize(rows=10, cols=3)
assert [(w.title, w.row_count, w.col_count) for w in sh.worksheets()] == [("Leads", 1000, 26), ("Results 2", 10, 3)]
sh.del_worksheet(new)
try:
    gc.open("No such spreadsheet")
    raise AssertionError("open of a missing title must fail")
except gspread.exceptions.SpreadsheetNotFound:
    pass
try:
    ws.get("Nope!A1")
    raise AssertionError("a bad range must fail")
except gspread.exceptions.APIError as e:
    assert e.code == 400, e

print("official SDKs: twilio, elevenlabs and gspread checks passed")
