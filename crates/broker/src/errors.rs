//! Mapping of library errors onto Kafka's error codes at the broker edge.

use fjord_common::ErrorCode;
use fjord_storage::StorageError;

/// The Kafka error code a client should see for a storage failure.
pub(crate) fn storage_error_code(e: &StorageError) -> ErrorCode {
    e.error_code()
}
