//! Enrollments on SQLite: leased claims as one `UPDATE … RETURNING` on the
//! writer thread, compare-and-set replaces, expired leases.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_domain::time::from_millis;
use switchboard_domain::{CampaignId, ContactId, Enrollment, EnrollmentId, EnrollmentStatus};
use switchboard_storage::{Cursor, EnrollmentStore, Page, PageRequest, StoreError, StoreResult};

use crate::SqliteStore;
use crate::campaigns::campaign_by_id;
use crate::rows::Where;
use crate::rows::map_err;
use crate::rows::{decode_cursor, json_err, to_doc, to_rfc3339};

pub(crate) fn decode_enrollment(doc: String) -> StoreResult<Enrollment> {
    serde_json::from_str(&doc).map_err(json_err)
}

pub(crate) fn write_enrollment(conn: &Connection, e: &Enrollment, insert: bool) -> StoreResult<usize> {
    let sql = if insert {
        "INSERT OR IGNORE INTO campaign_contacts (id, campaign_id, contact_id, status, attempts, next_attempt_at, lease_owner, \
         lease_expires_at, lease_token, current_call_id, created_at, updated_at, version, doc) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    } else {
        "UPDATE campaign_contacts SET status = ?4, attempts = ?5, next_attempt_at = ?6, lease_owner = ?7, lease_expires_at = ?8, \
         lease_token = ?9, current_call_id = ?10, updated_at = ?12, version = ?13, doc = ?14 \
         WHERE id = ?1 AND campaign_id = ?2 AND contact_id = ?3 AND version = ?13 - 1"
    };
    conn.prepare_cached(sql)
        .and_then(|mut st| {
            st.execute(params![
                e.id.as_str(),
                e.campaign_id.as_str(),
                e.contact_id.as_str(),
                e.status.as_str(),
                e.attempts,
                e.next_attempt_at.timestamp_millis(),
                e.lease.as_ref().map(|l| l.owner.clone()),
                e.lease.as_ref().map(|l| l.expires_at.timestamp_millis()),
                e.lease_token,
                e.current_call_id.as_ref().map(|c| c.to_string()),
                e.created_at.timestamp_millis(),
                e.updated_at.timestamp_millis(),
                e.version,
                to_doc(e),
            ])
        })
        .map_err(map_err)
}

pub(crate) fn enrollment_where(
    conn: &Connection,
    clause: &str,
    values: &[&dyn rusqlite::ToSql],
) -> StoreResult<Option<Enrollment>> {
    let sql = format!("SELECT doc FROM campaign_contacts WHERE {clause}");
    conn.prepare_cached(&sql)
        .and_then(|mut st| st.query_row(values, |r| r.get::<_, String>(0)).optional())
        .map_err(map_err)?
        .map(decode_enrollment)
        .transpose()
}

#[async_trait]
impl EnrollmentStore for SqliteStore {
    async fn enroll(&self, campaign_id: &CampaignId, contacts: &[ContactId], now: DateTime<Utc>) -> StoreResult<u64> {
        let campaign_id = campaign_id.clone();
        let contacts = contacts.to_vec();
        self.write(move |conn| {
            if campaign_by_id(conn, campaign_id.as_str())?.is_none() {
                return Err(StoreError::NotFound("campaign"));
            }
            let mut added = 0;
            for c in &contacts {
                let exists: bool = conn
                    .prepare_cached("SELECT 1 FROM contacts WHERE id = ?1")
                    .and_then(|mut st| st.exists([c.as_str()]))
                    .map_err(map_err)?;
                if !exists {
                    return Err(StoreError::Invalid(format!("contact {c} does not exist")));
                }
                added += write_enrollment(conn, &Enrollment::new(campaign_id.clone(), c.clone(), now), true)? as u64;
            }
            Ok(added)
        })
        .await
    }

    async fn get_enrollment(&self, id: &EnrollmentId) -> StoreResult<Option<Enrollment>> {
        let id = id.clone();
        self.read(move |conn| enrollment_where(conn, "id = ?1", &[&id.as_str()])).await
    }

    async fn find_enrollment(
        &self,
        campaign_id: &CampaignId,
        contact_id: &ContactId,
    ) -> StoreResult<Option<Enrollment>> {
        let (a, b) = (campaign_id.clone(), contact_id.clone());
        self.read(move |conn| {
            enrollment_where(conn, "campaign_id = ?1 AND contact_id = ?2", &[&a.as_str(), &b.as_str()])
        })
        .await
    }

    async fn list_enrollments(
        &self,
        campaign_id: &CampaignId,
        statuses: &[EnrollmentStatus],
        page: &PageRequest,
    ) -> StoreResult<Page<Enrollment>> {
        const SORT: &str = "enrollments_created_asc";
        let cursor = decode_cursor(page, SORT)?;
        let limit = page.clamped_limit();
        let mut w = Where::default();
        w.eq("campaign_id", Some(campaign_id.as_str()));
        if !statuses.is_empty() {
            let marks = vec!["?"; statuses.len()].join(",");
            w.push(&format!("status IN ({marks})"), statuses.iter().map(|s| s.as_str().to_owned().into()));
        }
        if let Some(c) = cursor {
            w.push("(created_at, id) > (?, ?)", [c.key.into(), c.id.into()]);
        }
        let sql = format!("SELECT doc FROM campaign_contacts {} ORDER BY created_at, id LIMIT {}", w.sql(), limit + 1);
        let docs = self
            .read(move |conn| {
                let mut st = conn.prepare_cached(&sql).map_err(map_err)?;
                st.query_map(rusqlite::params_from_iter(w.values), |r| r.get::<_, String>(0))
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(map_err)
            })
            .await?;
        let items = docs.into_iter().map(decode_enrollment).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, limit, |e| Cursor {
            sort: SORT.into(),
            key: e.created_at.timestamp_millis(),
            id: e.id.to_string(),
        }))
    }

    async fn count_enrollments(&self, campaign_id: &CampaignId) -> StoreResult<Vec<(EnrollmentStatus, u64)>> {
        let id = campaign_id.clone();
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached("SELECT status, count(*) FROM campaign_contacts WHERE campaign_id = ?1 GROUP BY status")
                .map_err(map_err)?;
            let rows: Vec<(String, i64)> = st
                .query_map([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|it| it.collect())
                .map_err(map_err)?;
            rows.into_iter()
                .map(|(s, n)| {
                    s.parse::<EnrollmentStatus>()
                        .map(|s| (s, n as u64))
                        .map_err(|e| StoreError::Other(anyhow::anyhow!(e)))
                })
                .collect()
        })
        .await
    }

    async fn claim_enrollment(
        &self,
        campaign_id: &CampaignId,
        now: DateTime<Utc>,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<Enrollment>> {
        let (id, owner) = (campaign_id.clone(), owner.to_owned());
        let (now, until) = (now.timestamp_millis(), lease_until.timestamp_millis());
        self.write(move |conn| {
            // Pick and lease in one statement on the writer: no two claimers can get the same row.
            let picked: Option<String> = conn
                .prepare_cached(
                    "UPDATE campaign_contacts SET status = 'dialing', lease_owner = ?3, lease_expires_at = ?4, \
                     lease_token = lease_token + 1, version = version + 1, updated_at = ?2 \
                     WHERE id = (SELECT id FROM campaign_contacts WHERE campaign_id = ?1 AND status IN ('pending','retry_wait') \
                                 AND next_attempt_at <= ?2 ORDER BY next_attempt_at, id LIMIT 1) \
                     RETURNING id",
                )
                .and_then(|mut st| st.query_row(params![id.as_str(), now, owner, until], |r| r.get(0)).optional())
                .map_err(map_err)?;
            let Some(eid) = picked else { return Ok(None) };
            // Bring the document in line with the columns just set.
            let mut e = enrollment_where(conn, "id = ?1", &[&eid.as_str()])?.ok_or(StoreError::NotFound("enrollment"))?;
            let (token, version): (i64, i64) = conn
                .query_row("SELECT lease_token, version FROM campaign_contacts WHERE id = ?1", [&eid], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(map_err)?;
            e.status = EnrollmentStatus::Dialing;
            e.lease = Some(switchboard_domain::enrollment::Lease { owner, expires_at: from_millis(until) });
            e.lease_token = token;
            e.version = version;
            e.updated_at = from_millis(now);
            conn.prepare_cached("UPDATE campaign_contacts SET doc = ?2 WHERE id = ?1")
                .and_then(|mut st| st.execute(params![eid, to_doc(&e)]))
                .map_err(map_err)?;
            Ok(Some(e))
        })
        .await
    }

    async fn replace_enrollment(&self, enrollment: &Enrollment) -> StoreResult<Enrollment> {
        let mut e = enrollment.clone();
        e.version += 1;
        self.write(move |conn| {
            if write_enrollment(conn, &e, false)? == 1 {
                return Ok(e);
            }
            match enrollment_where(conn, "id = ?1", &[&e.id.as_str()])? {
                None => Err(StoreError::NotFound("enrollment")),
                Some(now) => {
                    Err(StoreError::stale(format!("enrollment {} (now version {}, {})", e.id, now.version, now.status)))
                }
            }
        })
        .await
    }

    async fn expired_leases(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Enrollment>> {
        let now = now.timestamp_millis();
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT doc FROM campaign_contacts WHERE status = 'dialing' AND lease_expires_at < ?1 \
                     ORDER BY lease_expires_at LIMIT ?2",
                )
                .map_err(map_err)?;
            let docs: Vec<String> =
                st.query_map(params![now, limit], |r| r.get(0)).and_then(|it| it.collect()).map_err(map_err)?;
            docs.into_iter().map(decode_enrollment).collect()
        })
        .await
    }

    async fn remove_enrollment(&self, id: &EnrollmentId) -> StoreResult<bool> {
        let id = id.clone();
        self.write(move |conn| {
            let status: Option<String> = conn
                .query_row("SELECT status FROM campaign_contacts WHERE id = ?1", [id.as_str()], |r| r.get(0))
                .optional()
                .map_err(map_err)?;
            match status.as_deref() {
                None => Ok(false),
                Some("dialing" | "in_call") => {
                    Err(StoreError::conflict(format!("enrollment {id} has a call in flight")))
                }
                Some(_) => {
                    conn.execute("DELETE FROM campaign_contacts WHERE id = ?1", [id.as_str()]).map_err(map_err)?;
                    Ok(true)
                }
            }
        })
        .await
    }

    async fn cancel_waiting(&self, campaign_id: &CampaignId, now: DateTime<Utc>) -> StoreResult<u64> {
        let id = campaign_id.clone();
        let now = now.timestamp_millis();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE campaign_contacts SET status = 'cancelled', version = version + 1, updated_at = ?2, \
                     doc = json_set(doc, '$.status', 'cancelled', '$.version', version + 1, '$.reason', 'campaign cancelled', \
                                    '$.updated_at', ?3) \
                     WHERE campaign_id = ?1 AND status IN ('pending','retry_wait')",
                    params![id.as_str(), now, to_rfc3339(now)],
                )
                .map_err(map_err)?;
            Ok(n as u64)
        })
        .await
    }
}
