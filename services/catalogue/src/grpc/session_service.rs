//! The SessionService's entry points: each reads the caller (set by the platform's authentication layer: a
//! token that is sent must verify, anonymous callers are welcome where the rules allow) and hands over to its
//! handler ([`super::sessions`], [`super::session_documents`]).

use id77_platform::CallerOf;
use id77_proto::catalogue::v1 as pb;
use id77_proto::catalogue::v1::session_service_server::SessionService;
use tonic::{Request, Response, Status};

use super::sessions::SessionApi;

#[tonic::async_trait]
impl SessionService for SessionApi {
    async fn schedule_session(
        &self,
        request: Request<pb::ScheduleSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.schedule(caller.as_ref(), request.into_inner()).await?))
    }

    async fn cancel_session(
        &self,
        request: Request<pb::CancelSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.cancel(caller.as_ref(), request.into_inner()).await?))
    }

    async fn get_session(&self, request: Request<pb::GetSessionRequest>) -> Result<Response<pb::Session>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.get(caller.as_ref(), request.into_inner()).await?))
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.list(caller.as_ref(), request.into_inner()).await?))
    }

    async fn register(&self, request: Request<pb::RegisterRequest>) -> Result<Response<pb::RegisterResponse>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(SessionApi::register(self, caller.as_ref(), request.into_inner()).await?))
    }

    async fn cancel_registration(
        &self,
        request: Request<pb::CancelRegistrationRequest>,
    ) -> Result<Response<pb::Registration>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.cancel_registration(caller.as_ref(), request.into_inner()).await?))
    }

    async fn list_registrations(
        &self,
        request: Request<pb::ListRegistrationsRequest>,
    ) -> Result<Response<pb::ListRegistrationsResponse>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.list_registrations(caller.as_ref(), request.into_inner()).await?))
    }

    async fn record_attendance(
        &self,
        request: Request<pb::RecordAttendanceRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.record_attendance(caller.as_ref(), request.into_inner()).await?))
    }

    async fn rate_session(
        &self,
        request: Request<pb::RateSessionRequest>,
    ) -> Result<Response<pb::SessionRating>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.rate(caller.as_ref(), request.into_inner()).await?))
    }

    async fn get_attestation(
        &self,
        request: Request<pb::GetAttestationRequest>,
    ) -> Result<Response<pb::SessionDocument>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.attestation(caller.as_ref(), request.into_inner()).await?))
    }

    async fn get_attendance_sheet(
        &self,
        request: Request<pb::GetAttendanceSheetRequest>,
    ) -> Result<Response<pb::SessionDocument>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.attendance_sheet(caller.as_ref(), request.into_inner()).await?))
    }

    async fn get_session_calendar(
        &self,
        request: Request<pb::GetSessionRequest>,
    ) -> Result<Response<pb::SessionDocument>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.session_calendar(caller.as_ref(), request.into_inner()).await?))
    }

    async fn get_calendar_feed(
        &self,
        request: Request<pb::GetCalendarFeedRequest>,
    ) -> Result<Response<pb::SessionDocument>, Status> {
        request.optional_caller()?;
        Ok(Response::new(self.calendar_feed(request.into_inner()).await?))
    }

    async fn issue_calendar_feed(
        &self,
        request: Request<pb::IssueCalendarFeedRequest>,
    ) -> Result<Response<pb::CalendarFeed>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.issue_feed(caller.as_ref()).await?))
    }

    async fn revoke_calendar_feed(
        &self,
        request: Request<pb::RevokeCalendarFeedRequest>,
    ) -> Result<Response<pb::RevokeCalendarFeedResponse>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.revoke_feed(caller.as_ref()).await?))
    }

    async fn session_statistics(
        &self,
        request: Request<pb::SessionStatisticsRequest>,
    ) -> Result<Response<pb::SessionStatisticsResponse>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.statistics(caller.as_ref(), request.into_inner()).await?))
    }
}
