//! Consumer-group APIs.

use super::{HandlerResult, RequestContext};
use fjord_protocol::frame::FrameError;

pub(crate) async fn handle(ctx: &RequestContext<'_>) -> HandlerResult {
    Err(FrameError::Malformed {
        what: "request",
        reason: format!("{:?} is not served yet", ctx.request.api_key),
    })
}
