//! `sb_bm25`: BM25 over an FTS5 table, with each phrase's weight (its idf)
//! given by the caller instead of counted by FTS5.
//!
//! FTS5's own `bm25()` starts every query by counting, for each phrase, the
//! rows that hold it (`xQueryPhrase` over the whole doclist, positions
//! checked for a quoted phrase): on a corpus where a query word is in most
//! rows that pass costs more than ranking a page. Switchboard keeps each
//! word's row count itself (`transcript_token_rows`, written in the same
//! transaction as the index), so the idf is known before the query runs.
//!
//! ```sql
//! SELECT rowid, sb_bm25(transcript_fts, 2, ?weights) AS score
//! FROM transcript_fts WHERE transcript_fts MATCH ?expr ORDER BY score, rowid
//! ```
//!
//! Arguments after the table: the number of leading columns counted (later
//! columns weigh nothing), and a blob of little-endian `f64` weights, one per
//! phrase of the expression in FTS5's order (left to right); phrases past the
//! blob's end weigh nothing. The result is −Σᵢ wᵢ · [`saturation`]`(tfᵢ)`, tfᵢ
//! the phrase's instances in the counted columns: negative like FTS5's
//! `bm25()`, so `ORDER BY score` is best first.
//!
//! Length normalisation is left out (BM25 with b = 0): the index keeps no
//! row sizes (`columnsize = 0`, to stay small), so FTS5's own `bm25()` had
//! no per-row length either.

use std::ffi::{c_int, c_void};
use std::ptr;

use rusqlite::{Connection, ffi};

/// The SQL name of the function.
pub const FUNCTION: &str = "sb_bm25";

/// BM25's k₁ (FTS5's and Lucene's default).
pub const K1: f64 = 1.2;

/// A phrase's score per unit of weight when it occurs `tf` times:
/// tf·(k₁+1) / (tf + k₁). Strictly increasing, below k₁ + 1.
pub fn saturation(tf: u32) -> f64 {
    let x = f64::from(tf);
    x * (K1 + 1.0) / (x + K1)
}

/// The weights blob `sb_bm25` takes.
pub fn weights_blob(weights: &[f64]) -> Vec<u8> {
    weights.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn failure(rc: c_int, what: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), Some(format!("{FUNCTION}: {what}")))
}

/// Registers `sb_bm25` on this connection (each connection needs it).
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let api = fts5_api(conn)?;
    // SAFETY: `api` is the non-null fts5_api of this open connection (checked
    // in `fts5_api`), valid while the connection is; the name is a C string
    // literal, copied by FTS5; the function has the signature FTS5 calls and
    // no user data or destructor.
    let rc = unsafe {
        let Some(create) = (*api).xCreateFunction else {
            return Err(failure(ffi::SQLITE_ERROR, "this SQLite's fts5_api has no xCreateFunction"));
        };
        create(api, c"sb_bm25".as_ptr(), ptr::null_mut(), Some(sb_bm25), None)
    };
    if rc != ffi::SQLITE_OK {
        return Err(failure(rc, "cannot register the function"));
    }
    Ok(())
}

/// The connection's `fts5_api` (the documented way: `SELECT fts5(?1)` with
/// a pointer bound as type "fts5_api_ptr").
fn fts5_api(conn: &Connection) -> rusqlite::Result<*mut ffi::fts5_api> {
    let mut api: *mut ffi::fts5_api = ptr::null_mut();
    // SAFETY: the handle is this open connection's; the statement is
    // prepared, bound, stepped and finalized here and nowhere else; the bound
    // pointer is to `api`, which outlives the statement, and FTS5 writes one
    // `fts5_api*` through it.
    let rc = unsafe {
        let db = conn.handle();
        let mut stmt: *mut ffi::sqlite3_stmt = ptr::null_mut();
        let rc = ffi::sqlite3_prepare_v2(db, c"SELECT fts5(?1)".as_ptr(), -1, &mut stmt, ptr::null_mut());
        if rc != ffi::SQLITE_OK {
            return Err(failure(rc, "SELECT fts5(?1) failed to prepare (is FTS5 compiled in?)"));
        }
        let mut rc =
            ffi::sqlite3_bind_pointer(stmt, 1, (&raw mut api).cast::<c_void>(), c"fts5_api_ptr".as_ptr(), None);
        if rc == ffi::SQLITE_OK {
            rc = ffi::sqlite3_step(stmt);
        }
        ffi::sqlite3_finalize(stmt);
        rc
    };
    if rc != ffi::SQLITE_ROW && rc != ffi::SQLITE_DONE {
        return Err(failure(rc, "SELECT fts5(?1) failed"));
    }
    if api.is_null() {
        return Err(failure(ffi::SQLITE_ERROR, "FTS5 gave no fts5_api"));
    }
    Ok(api)
}

/// The FTS5 entry point: the score, or the SQLite error code of a failed
/// read.
unsafe extern "C" fn sb_bm25(
    api: *const ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    ctx: *mut ffi::sqlite3_context,
    n: c_int,
    args: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: FTS5 calls this with its extension API, the current row's
    // context, the SQL function context and `n` argument values (those after
    // the table), all valid for this call.
    unsafe {
        if n != 2 {
            ffi::sqlite3_result_error(ctx, c"sb_bm25(table, columns, weights): wrong number of arguments".as_ptr(), -1);
            return;
        }
        let columns = ffi::sqlite3_value_int(*args);
        let value = *args.add(1);
        // sqlite3_value_blob before sqlite3_value_bytes, as SQLite documents.
        let blob = ffi::sqlite3_value_blob(value).cast::<u8>();
        let len = usize::try_from(ffi::sqlite3_value_bytes(value)).unwrap_or(0);
        let weights: &[u8] = if blob.is_null() || len == 0 { &[] } else { std::slice::from_raw_parts(blob, len) };
        match score(&*api, fts, columns, weights) {
            Ok(s) => ffi::sqlite3_result_double(ctx, -s),
            Err(rc) => ffi::sqlite3_result_error_code(ctx, rc),
        }
    }
}

/// Σ wᵢ · saturation(tfᵢ) over the phrases that have a weight.
///
/// # Safety
/// `api` and `fts` are what FTS5 passed to the running function call.
unsafe fn score(
    api: &ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    columns: c_int,
    weights: &[u8],
) -> Result<f64, c_int> {
    let (Some(phrase_count), Some(first), Some(next)) = (api.xPhraseCount, api.xPhraseFirst, api.xPhraseNext) else {
        return Err(ffi::SQLITE_MISUSE);
    };
    // SAFETY: `fts` is the context of the current call (the caller's contract).
    let phrases = unsafe { phrase_count(fts) };
    let mut total = 0.0;
    for (i, w) in weights.chunks_exact(8).enumerate().take(usize::try_from(phrases).unwrap_or(0)) {
        let w = f64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        if w == 0.0 {
            continue;
        }
        let mut iter = ffi::Fts5PhraseIter { a: ptr::null(), b: ptr::null() };
        let (mut col, mut off): (c_int, c_int) = (0, 0);
        let mut tf = 0u32;
        // SAFETY: `i` < the phrase count; `iter`, `col` and `off` are ours and
        // live across the iteration, which FTS5 ends by setting `col` < 0.
        unsafe {
            let rc = first(fts, i as c_int, &mut iter, &mut col, &mut off);
            if rc != ffi::SQLITE_OK {
                return Err(rc);
            }
            while col >= 0 {
                if col < columns {
                    tf += 1;
                }
                next(fts, &mut iter, &mut col, &mut off);
            }
        }
        if tf > 0 {
            total += w * saturation(tf);
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        conn.execute_batch(
            "CREATE VIRTUAL TABLE t USING fts5 (a, b, c);
             INSERT INTO t (rowid, a, b, c) VALUES
               (1, 'red red blue', 'red', 'red red red red'),
               (2, 'blue green', 'green blue', ''),
               (3, 'red fox jumps', '', 'red');",
        )
        .unwrap();
        conn
    }

    fn scores(conn: &Connection, expr: &str, columns: i64, weights: &[f64]) -> Vec<(i64, f64)> {
        conn.prepare("SELECT rowid, sb_bm25(t, ?2, ?3) AS s FROM t WHERE t MATCH ?1 ORDER BY s, rowid")
            .unwrap()
            .query_map(rusqlite::params![expr, columns, weights_blob(weights)], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn scores_count_each_weighted_phrase_in_the_leading_columns() {
        let conn = db();
        // Phrase 0 `red` (weight 2), phrase 1 `blue` (weight 0.5); column c not counted.
        let got = scores(&conn, "red OR blue", 2, &[2.0, 0.5]);
        let want = [
            (1, -(2.0 * saturation(3) + 0.5 * saturation(1))),
            (3, -(2.0 * saturation(1))),
            (2, -(0.5 * saturation(2))),
        ];
        assert_eq!(got.len(), 3);
        for ((rid, s), (wrid, ws)) in got.iter().zip(want) {
            assert_eq!(*rid, wrid);
            assert!((s - ws).abs() < 1e-12, "{rid}: {s} vs {ws}");
        }
        // Counting all three columns adds c's four `red`s to row 1.
        let all = scores(&conn, "red", 3, &[1.0]);
        assert!((all[0].1 + saturation(7)).abs() < 1e-12, "{all:?}");
        // A quoted phrase is one phrase; phrases past the weights weigh 0.
        let phrase = scores(&conn, "\"red blue\" OR green", 2, &[1.0]);
        assert!((phrase.iter().find(|r| r.0 == 1).unwrap().1 + saturation(1)).abs() < 1e-12);
        assert_eq!(phrase.iter().find(|r| r.0 == 2).unwrap().1, 0.0);
        // No weights: every row scores 0.
        assert!(scores(&conn, "red", 2, &[]).iter().all(|r| r.1 == 0.0));
    }

    #[test]
    fn a_wrong_call_is_an_error_not_a_crash() {
        let conn = db();
        let err = conn.query_row("SELECT sb_bm25(t, 2) FROM t WHERE t MATCH 'red'", [], |r| r.get::<_, f64>(0));
        assert!(err.unwrap_err().to_string().contains("wrong number of arguments"));
        // Registering twice replaces the function.
        register(&conn).unwrap();
        assert_eq!(scores(&conn, "fox", 2, &[1.0]).len(), 1);
    }

    #[test]
    fn saturation_grows_and_stays_below_k1_plus_one() {
        let mut last = 0.0;
        for tf in 1..1000 {
            let s = saturation(tf);
            assert!(s > last && s < K1 + 1.0);
            last = s;
        }
    }
}
