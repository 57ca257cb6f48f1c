//! Live availability: `GET {base}/api/resources/{id}/events` is a server-sent event stream that
//! says `changed` whenever a reservation of that resource is made, moved or ended on this node,
//! so open week calendars fetch the availability again. (Several nodes: each tells its own
//! calendars; a calendar also refreshes when it regains focus.)

use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use futures_util::stream;
use tokio::sync::broadcast;

use super::Booking;

/// The in-process change feed.
#[derive(Clone)]
pub struct Live {
    tx: broadcast::Sender<String>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl Live {
    /// Tells open calendars of `resource_id` that its availability changed.
    pub fn changed(&self, resource_id: &str) {
        // No open calendar: nobody to tell.
        let _ = self.tx.send(resource_id.to_owned());
    }

    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.tx.subscribe()
    }
}

/// How often an idle stream sends a comment (keeps proxies from closing it).
const KEEPALIVE: Duration = Duration::from_secs(20);

pub fn configure(cfg: &mut web::ServiceConfig, booking: web::Data<Booking>) {
    let base = booking.base();
    cfg.route(
        &format!("{base}/api/resources/{{id}}/events"),
        web::get().to(move |path: web::Path<String>| {
            let b = booking.clone();
            async move { events(b, path.into_inner()) }
        }),
    );
}

fn events(b: web::Data<Booking>, id: String) -> HttpResponse {
    if id.len() > 64 {
        return HttpResponse::NotFound().finish();
    }
    let rx = b.live.subscribe();
    let first = web::Bytes::from_static(b"retry: 5000\n: connected\n\n");
    let s = stream::unfold((rx, id, Some(first)), |(mut rx, id, first)| async move {
        if let Some(f) = first {
            return Some((Ok::<_, actix_web::Error>(f), (rx, id, None)));
        }
        loop {
            match tokio::time::timeout(KEEPALIVE, rx.recv()).await {
                Err(_) => {
                    return Some((
                        Ok(web::Bytes::from_static(b": keepalive\n\n")),
                        (rx, id, None),
                    ))
                }
                Ok(Ok(changed)) if changed == id => {
                    return Some((
                        Ok(web::Bytes::from_static(
                            b"event: changed\ndata: changed\n\n",
                        )),
                        (rx, id, None),
                    ))
                }
                Ok(Ok(_)) => continue,
                // Missed some: tell the calendar to refresh.
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                    return Some((
                        Ok(web::Bytes::from_static(
                            b"event: changed\ndata: changed\n\n",
                        )),
                        (rx, id, None),
                    ))
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return None,
            }
        }
    });
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(s)
}
