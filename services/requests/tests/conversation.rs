//! The conversation against the real PostgreSQL and NATS: who takes part in a request's thread, read markers,
//! the `message.posted` event through the outbox, and attachments streamed in and out (type and size refused
//! with a clear error and nothing left behind).

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use id77_platform::auth::Role;
use id77_platform::testing::TestKeys;
use id77_platform::{Namespace, ServiceError, testing};
use id77_proto::catalogue::v1::{Offer, OfferPublished};
use id77_proto::membership::v1::{MemberApproved, MemberUpdated};
use id77_proto::requests::v1::conversation_service_client::ConversationServiceClient;
use id77_proto::requests::v1::download_attachment_chunk::Part as DownloadPart;
use id77_proto::requests::v1::requests_service_client::RequestsServiceClient;
use id77_proto::requests::v1::upload_attachment_chunk::Part as UploadPart;
use id77_proto::requests::v1::{
    AttachmentHeader, ConversationMessage, DownloadAttachmentRequest, GetRequestRequest, ListMessagesRequest,
    ListMessagesResponse, MarkReadRequest, MessagePosted, PostMessageRequest, SubmitRequestRequest,
    UploadAttachmentChunk,
};
use id77_proto::routing::v1::{ReferralDeclined, ReferralOffered};
use prost::Message;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

mod support;

const P: &str = "caue77";

struct Service {
    url: String,
    pool: sqlx::PgPool,
    js: jetstream::Context,
    ns: Namespace,
    requests: RequestsServiceClient<Channel>,
    conversation: ConversationServiceClient<Channel>,
    keys: TestKeys,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// `message` with `authorization: Bearer <token>`.
fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", TestKeys::bearer(token));
    request
}

fn reason(status: &tonic::Status) -> String {
    ServiceError::from_status(status).reason.into_owned()
}

async fn start() -> Service {
    let support::Running { url, js, ns, channel, keys, shutdown, task } =
        support::run_requests("conversation-test").await;
    // The service creates and migrates its database as it starts.
    let mut pool = None;
    for _ in 0..200 {
        if let Ok(p) = sqlx::PgPool::connect(&url).await
            && sqlx::query("SELECT 1 FROM attachment_chunk LIMIT 1").execute(&p).await.is_ok()
        {
            pool = Some(p);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pool = pool.expect("database migrated");
    Service {
        url,
        pool,
        js,
        ns,
        requests: RequestsServiceClient::new(channel.clone()),
        conversation: ConversationServiceClient::new(channel),
        keys,
        shutdown,
        task,
    }
}

impl Service {
    async fn publish<M: Message>(&self, subject: &str, message: &M) {
        let msg =
            PublishMessage::build().payload(message.encode_to_vec().into()).message_id(Uuid::now_v7().to_string());
        self.js.send_publish(self.ns.subject(subject), msg).await.expect("publish").await.expect("ack");
    }

    fn now() -> Option<id77_proto::prost_types::Timestamp> {
        Some(id77_platform::time::to_proto(id77_platform::time::now()))
    }

    /// An active member following `referent`, an offer of P, and a request of the member referred to P.
    async fn referred_request(&mut self, member: Uuid, referent: Uuid) -> String {
        let offer = Uuid::now_v7();
        self.publish(
            "id77.membership.member.approved",
            &MemberApproved { member_id: member.to_string(), occurred_at: Self::now(), ..Default::default() },
        )
        .await;
        self.publish(
            "id77.membership.member.updated",
            &MemberUpdated {
                member_id: member.to_string(),
                referent_user_id: referent.to_string(),
                occurred_at: Self::now(),
                ..Default::default()
            },
        )
        .await;
        let offer_msg = Offer {
            id: offer.to_string(),
            code: "conseil-archi".into(),
            title: "Conseil architectural".into(),
            provider_code: P.into(),
            version: 1,
            ..Default::default()
        };
        self.publish("id77.catalogue.offer.published", &OfferPublished { offer: Some(offer_msg), provider: None })
            .await;
        let user = self.keys.token(Role::MemberUser, Some(member), None);
        let submission = SubmitRequestRequest {
            member_id: member.to_string(),
            offer_id: offer.to_string(),
            subject: "Rénovation de l'école".into(),
            description: "Par où commencer ?".into(),
            idempotency_key: String::new(),
            ..Default::default()
        };
        let mut request = None;
        for _ in 0..200 {
            match self.requests.submit_request(with_token(submission.clone(), &user)).await {
                Ok(r) => {
                    request = Some(r.into_inner());
                    break;
                }
                Err(e) if matches!(e.code(), Code::FailedPrecondition | Code::NotFound) => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        let request = request.expect("read models caught up");
        let offered = ReferralOffered {
            request_id: request.id.clone(),
            member_id: member.to_string(),
            provider_code: P.into(),
            occurred_at: Self::now(),
            ..Default::default()
        };
        self.publish("id77.routing.referral.offered", &offered).await;
        // Wait until the request is referred and the referent is known.
        let coordinator = self.keys.token(Role::Coordinator, None, None);
        let referent_token = self.referent(referent);
        for _ in 0..200 {
            let got =
                self.requests.get_request(with_token(GetRequestRequest { id: request.id.clone() }, &coordinator)).await;
            let referred = got.is_ok_and(|r| r.into_inner().provider_code == P);
            let followed = self.list(&referent_token, &request.id).await.is_ok();
            if referred && followed {
                return request.id;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("request never referred to {P}")
    }

    fn referent(&self, user: Uuid) -> String {
        let mut claims = id77_platform::auth::Claims::new(user, Role::Referent, chrono::Utc::now().timestamp());
        claims.email = "referent@departement77.fr".into();
        self.keys.sign(&claims)
    }

    async fn post(&mut self, token: &str, request_id: &str, body: &str) -> Result<ConversationMessage, tonic::Status> {
        let req = PostMessageRequest { request_id: request_id.into(), body: body.into() };
        Ok(self.conversation.post_message(with_token(req, token)).await?.into_inner())
    }

    async fn list(&mut self, token: &str, request_id: &str) -> Result<ListMessagesResponse, tonic::Status> {
        let req = ListMessagesRequest { request_id: request_id.into(), ..Default::default() };
        Ok(self.conversation.list_messages(with_token(req, token)).await?.into_inner())
    }

    async fn upload(
        &mut self,
        token: &str,
        request_id: &str,
        content_type: &str,
        content: &[u8],
        piece: usize,
    ) -> Result<ConversationMessage, tonic::Status> {
        let mut parts = vec![UploadAttachmentChunk {
            part: Some(UploadPart::Header(AttachmentHeader {
                request_id: request_id.into(),
                filename: "plan.pdf".into(),
                content_type: content_type.into(),
                body: "Le plan de masse".into(),
            })),
        }];
        parts.extend(content.chunks(piece).map(|c| UploadAttachmentChunk { part: Some(UploadPart::Data(c.to_vec())) }));
        Ok(self.conversation.upload_attachment(with_token(futures::stream::iter(parts), token)).await?.into_inner())
    }

    async fn download(
        &mut self,
        token: &str,
        request_id: &str,
        attachment_id: &str,
    ) -> Result<(String, Vec<u8>), tonic::Status> {
        let req = DownloadAttachmentRequest { request_id: request_id.into(), attachment_id: attachment_id.into() };
        let mut stream = self.conversation.download_attachment(with_token(req, token)).await?.into_inner();
        let mut content_type = String::new();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.message().await? {
            match chunk.part {
                Some(DownloadPart::Attachment(a)) => content_type = a.content_type,
                Some(DownloadPart::Data(d)) => bytes.extend_from_slice(&d),
                None => {}
            }
        }
        Ok((content_type, bytes))
    }

    async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }

    async fn stop(self) {
        self.pool.close().await;
        self.shutdown.cancel();
        self.task.await.expect("join").expect("clean stop");
        testing::delete_streams(&self.js, &self.ns).await;
        testing::drop_database(&self.url).await;
    }
}

#[tokio::test]
async fn the_member_the_provider_and_the_referent_talk_and_nobody_else_reads() {
    let mut s = start().await;
    let (member, referent) = (Uuid::now_v7(), Uuid::now_v7());
    let request_id = s.referred_request(member, referent).await;
    let user = s.keys.token(Role::MemberUser, Some(member), None);
    let agent = s.keys.token(Role::ProviderAgent, None, Some(P));
    let referent_token = s.referent(referent);
    let coordinator = s.keys.token(Role::Coordinator, None, None);

    let first = s.post(&user, &request_id, "  Bonjour, voici notre projet.  ").await.expect("member posts");
    assert_eq!((first.body.as_str(), first.author_role.as_str()), ("Bonjour, voici notre projet.", "member_user"));

    // The provider's agent sees it, unread; marks it read; answers.
    let thread = s.list(&agent, &request_id).await.expect("agent reads");
    assert_eq!(thread.messages.len(), 1);
    assert_eq!(thread.unread_count, 1);
    let marked = s
        .conversation
        .mark_read(with_token(
            MarkReadRequest { request_id: request_id.clone(), up_to_message_id: first.id.clone() },
            &agent,
        ))
        .await
        .expect("mark read")
        .into_inner();
    assert_eq!(marked.unread_count, 0);
    let answer = s.post(&agent, &request_id, "Bien reçu, nous revenons vers vous.").await.expect("agent answers");
    assert_eq!(answer.author_role, "provider_agent");
    // The referent writes as the referent, under the name its token carries.
    let note = s.post(&referent_token, &request_id, "Je suis le dossier.").await.expect("referent posts");
    assert_eq!((note.author_role.as_str(), note.author_name.as_str()), ("referent", "referent@departement77.fr"));

    // The member has two unread messages (its own does not count); the coordinator reads the thread too.
    let for_member = s.list(&user, &request_id).await.expect("member reads");
    assert_eq!(for_member.messages.len(), 3);
    assert_eq!(for_member.unread_count, 2);
    let everything = s
        .conversation
        .mark_read(with_token(MarkReadRequest { request_id: request_id.clone(), ..Default::default() }, &user))
        .await
        .expect("mark all read")
        .into_inner();
    assert_eq!(everything.unread_count, 0);
    assert_eq!(s.list(&coordinator, &request_id).await.expect("coordinator reads").unread_count, 3);

    // Pagination keeps the order.
    let page = s
        .conversation
        .list_messages(with_token(
            ListMessagesRequest { request_id: request_id.clone(), page_size: 2, ..Default::default() },
            &user,
        ))
        .await
        .expect("page 1")
        .into_inner();
    assert_eq!(page.messages.len(), 2);
    let rest = s
        .conversation
        .list_messages(with_token(
            ListMessagesRequest {
                request_id: request_id.clone(),
                page_size: 2,
                page_token: page.next_page_token,
                ..Default::default()
            },
            &user,
        ))
        .await
        .expect("page 2")
        .into_inner();
    assert_eq!(rest.messages.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), [note.id.as_str()]);

    // Sync: only the messages posted strictly after `updated_since` (the unread count stays the thread's).
    let since = |at: &Option<id77_proto::prost_types::Timestamp>| ListMessagesRequest {
        request_id: request_id.clone(),
        updated_since: *at,
        ..Default::default()
    };
    let newer = s.conversation.list_messages(with_token(since(&answer.created_at), &coordinator)).await;
    let newer = newer.expect("messages since the answer").into_inner();
    assert_eq!(newer.messages.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), [note.id.as_str()]);
    assert_eq!(newer.unread_count, 3);
    let none = s.conversation.list_messages(with_token(since(&note.created_at), &coordinator)).await;
    assert!(none.expect("messages since the last").into_inner().messages.is_empty());
    let bad = id77_proto::prost_types::Timestamp { seconds: i64::MAX, nanos: 0 };
    let err = s.conversation.list_messages(with_token(since(&Some(bad)), &coordinator)).await.expect_err("bad");
    assert_eq!(err.code(), Code::InvalidArgument);

    // Another member's user, another provider's agent, another referent: not found; an operator: forbidden.
    let outsiders = [
        s.keys.token(Role::MemberUser, Some(Uuid::now_v7()), None),
        s.keys.token(Role::ProviderAgent, None, Some("dir-routes")),
        s.referent(Uuid::now_v7()),
    ];
    for outsider in &outsiders {
        assert_eq!(s.list(outsider, &request_id).await.map(|_| ()).map_err(|e| e.code()), Err(Code::NotFound));
        assert_eq!(
            s.post(outsider, &request_id, "intrus").await.map(|_| ()).map_err(|e| e.code()),
            Err(Code::NotFound)
        );
    }
    let operator = s.keys.token(Role::Operator, None, None);
    assert_eq!(s.list(&operator, &request_id).await.map(|_| ()).map_err(|e| e.code()), Err(Code::PermissionDenied));
    // Bad input: typed errors.
    let empty = s.post(&user, &request_id, "   ").await.expect_err("empty body");
    assert_eq!(empty.code(), Code::InvalidArgument);
    let long = s.post(&user, &request_id, &"x".repeat(5_001)).await.expect_err("too long");
    assert_eq!(long.code(), Code::InvalidArgument);
    assert_eq!(s.list(&user, "not-a-uuid").await.map(|_| ()).map_err(|e| e.code()), Err(Code::InvalidArgument));
    assert_eq!(s.list(&user, &Uuid::now_v7().to_string()).await.map(|_| ()).map_err(|e| e.code()), Err(Code::NotFound));

    // Three message.posted events reached the REQUESTS stream, the last one carrying who may read the thread.
    let subject = s.ns.subject("id77.requests.message.posted");
    let mut last = None;
    for _ in 0..100 {
        let stream = s.js.get_stream(s.ns.stream("REQUESTS")).await.expect("stream");
        if let Ok(message) = stream.get_last_raw_message_by_subject(&subject).await {
            let event = MessagePosted::decode(message.payload.as_ref()).expect("MessagePosted");
            if event.message_id == note.id {
                last = Some(event);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let event = last.expect("message.posted published");
    assert_eq!(event.request_id, request_id);
    assert_eq!(event.member_id, member.to_string());
    assert_eq!(event.provider_code, P);
    assert_eq!(event.referent_user_id, referent.to_string());
    assert_eq!((event.author_role.as_str(), event.excerpt.as_str()), ("referent", "Je suis le dossier."));
    let posted: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE subject = 'id77.requests.message.posted'")
        .fetch_one(&s.pool)
        .await
        .expect("outbox");
    assert_eq!(posted, 3);

    // The provider declines: its agents leave the thread; the member keeps it.
    let declined = ReferralDeclined {
        request_id: request_id.clone(),
        member_id: member.to_string(),
        provider_code: P.into(),
        reason: "hors périmètre".into(),
        occurred_at: Service::now(),
        ..Default::default()
    };
    s.publish("id77.routing.referral.declined", &declined).await;
    let mut gone = false;
    for _ in 0..200 {
        if s.list(&agent, &request_id).await.is_err_and(|e| e.code() == Code::NotFound) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "a declined provider no longer reads the thread");
    assert_eq!(s.post(&agent, &request_id, "encore moi").await.map(|_| ()).map_err(|e| e.code()), Err(Code::NotFound));
    assert!(s.list(&user, &request_id).await.is_ok());
    s.stop().await;
}

#[tokio::test]
async fn attachments_stream_in_and_out_and_refused_files_leave_nothing() {
    let mut s = start().await;
    let (member, referent) = (Uuid::now_v7(), Uuid::now_v7());
    let request_id = s.referred_request(member, referent).await;
    let user = s.keys.token(Role::MemberUser, Some(member), None);
    let agent = s.keys.token(Role::ProviderAgent, None, Some(P));

    // 600 kB PDF in 10 kB pieces: three stored chunks (256 KiB, 256 KiB, the rest).
    let pdf: Vec<u8> = b"%PDF-1.7\n".iter().copied().chain((0..600_000u32).map(|i| (i * 7 % 253) as u8)).collect();
    let message = s.upload(&user, &request_id, "application/pdf", &pdf, 10_000).await.expect("upload");
    assert_eq!(message.body, "Le plan de masse");
    let attachment = message.attachments.first().cloned().expect("one attachment");
    let sha: String = Sha256::digest(&pdf).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!((attachment.size_bytes, attachment.sha256.as_str()), (pdf.len() as i64, sha.as_str()));
    assert_eq!(s.count("attachment_chunk").await, 3);

    // The provider's agent finds it in the thread and downloads the same bytes.
    let thread = s.list(&agent, &request_id).await.expect("agent reads");
    assert_eq!(thread.messages[0].attachments.first().map(|a| a.id.clone()), Some(attachment.id.clone()));
    let (content_type, bytes) = s.download(&agent, &request_id, &attachment.id).await.expect("download");
    assert_eq!(content_type, "application/pdf");
    assert!(bytes == pdf, "downloaded bytes differ");
    // Outsiders cannot download it, not even through another request's id.
    let outsider = s.keys.token(Role::MemberUser, Some(Uuid::now_v7()), None);
    assert_eq!(
        s.download(&outsider, &request_id, &attachment.id).await.map(|_| ()).map_err(|e| e.code()),
        Err(Code::NotFound)
    );
    let unknown = s.download(&user, &request_id, &Uuid::now_v7().to_string()).await.expect_err("unknown attachment");
    assert_eq!(unknown.code(), Code::NotFound);

    let before = (s.count("message").await, s.count("attachment").await, s.count("attachment_chunk").await);
    let outbox_before = s.count("outbox").await;
    // Too big: refused once past 10 MiB, with its reason; nothing stored.
    let mut big = b"%PDF-1.4\n".to_vec();
    big.resize(10 * 1024 * 1024 + 1, b'x');
    let err = s.upload(&user, &request_id, "application/pdf", &big, 64 * 1024).await.expect_err("too big");
    assert_eq!((err.code(), reason(&err).as_str()), (Code::InvalidArgument, "ATTACHMENT_TOO_LARGE"));
    // An executable declared as a PDF, a type that is not allowed, an empty file.
    let exe = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0".repeat(100);
    let err = s.upload(&user, &request_id, "application/pdf", &exe, 1000).await.expect_err("exe as pdf");
    assert_eq!((err.code(), reason(&err).as_str()), (Code::InvalidArgument, "ATTACHMENT_CONTENT_MISMATCH"));
    let err = s.upload(&user, &request_id, "application/x-msdownload", &exe, 1000).await.expect_err("exe");
    assert_eq!(reason(&err), "ATTACHMENT_TYPE_NOT_ALLOWED");
    let err = s.upload(&user, &request_id, "text/plain", &[], 1).await.expect_err("empty");
    assert_eq!(reason(&err), "ATTACHMENT_EMPTY");
    // Text that is not UTF-8 past the first chunk.
    let mut text = "Compte rendu\n".repeat(30_000).into_bytes();
    text.push(0xFF);
    let err = s.upload(&user, &request_id, "text/plain", &text, 50_000).await.expect_err("not UTF-8");
    assert_eq!(reason(&err), "ATTACHMENT_CONTENT_MISMATCH");
    // An outsider's upload is refused before any byte is stored.
    let err = s.upload(&outsider, &request_id, "application/pdf", &pdf, 10_000).await.expect_err("outsider");
    assert_eq!(err.code(), Code::NotFound);
    let after = (s.count("message").await, s.count("attachment").await, s.count("attachment_chunk").await);
    assert_eq!(after, before, "refused uploads leave no message, attachment or chunk");
    assert_eq!(s.count("outbox").await, outbox_before, "and no event");

    // A small ODT from the provider: one chunk, its type recorded as checked.
    let mut odt = b"PK\x03\x04".to_vec();
    odt.resize(30, 0);
    odt.extend_from_slice(b"mimetypeapplication/vnd.oasis.opendocument.text");
    odt.extend_from_slice(&[1u8; 500]);
    let reply =
        s.upload(&agent, &request_id, "application/vnd.oasis.opendocument.text", &odt, 100).await.expect("odt upload");
    assert_eq!(reply.attachments[0].content_type, "application/vnd.oasis.opendocument.text");
    let (_, back) = s.download(&user, &request_id, &reply.attachments[0].id).await.expect("member downloads");
    assert_eq!(back, odt);
    s.stop().await;
}
