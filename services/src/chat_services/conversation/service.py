"""ConversationService handlers: create conversations, add, remove and list members."""

from __future__ import annotations

from grpclib.server import Stream

from chat.v1 import conversation_service_grpc, conversation_service_pb2
from chat.v1.conversation_service_pb2 import (
    AddMemberRequest,
    AddMemberResponse,
    CreateConversationRequest,
    CreateConversationResponse,
    ListMembersRequest,
    ListMembersResponse,
    RemoveMemberRequest,
    RemoveMemberResponse,
)
from chat_services.conversation.store import ConversationStore, Membership, not_found
from chat_services.errors import InvalidArgument, PermissionDenied, grpc_status
from chat_services.framing import one_request
from chat_services.pagination import decode_token, encode_token, page_size, position_after
from chat_services.security.access import ConversationAccess
from chat_services.security.identity import IdentityKind, current_identity
from chat_services.security.scopes import MESSAGES_ADMIN
from chat_services.timestamps import timestamp


class ConversationService(conversation_service_grpc.ConversationServiceBase):
    """Conversations in ``store``; membership rules from ``access``."""

    def __init__(self, store: ConversationStore, access: ConversationAccess) -> None:
        self.store = store
        self.access = access

    async def CreateConversation(
        self, stream: Stream[CreateConversationRequest, CreateConversationResponse]
    ) -> None:
        request = await one_request(stream)
        with grpc_status():
            members = list(request.member_ids)
            record = await self.store.create(request.conversation_id, _owner(members), members)
        conversation = conversation_service_pb2.Conversation(
            conversation_id=record.conversation_id,
            owner_id=record.owner_id,
            created_at=timestamp(record.created_at_ns),
            member_count=record.member_count,
        )
        await stream.send_message(CreateConversationResponse(conversation=conversation))

    async def AddMember(self, stream: Stream[AddMemberRequest, AddMemberResponse]) -> None:
        request = await one_request(stream)
        with grpc_status():
            await self.access.require_member(request.conversation_id)
            membership = await self.store.add(request.conversation_id, request.user_id)
        await stream.send_message(AddMemberResponse(member=_member(membership)))

    async def RemoveMember(self, stream: Stream[RemoveMemberRequest, RemoveMemberResponse]) -> None:
        request = await one_request(stream)
        with grpc_status():
            await self.access.require_member(request.conversation_id)
            removed = await self.store.remove(
                request.conversation_id, request.user_id, by=self.access.acting_user()
            )
        await stream.send_message(RemoveMemberResponse(removed=removed))

    async def ListMembers(self, stream: Stream[ListMembersRequest, ListMembersResponse]) -> None:
        request = await one_request(stream)
        with grpc_status():
            conversation_id = request.conversation_id
            await self.access.require_member(conversation_id)
            # A member's conversation exists; an open server or an admin may name any ID.
            if self.access.acting_user() is None and not await self.store.exists(conversation_id):
                raise not_found(conversation_id)
            size = page_size(request.page.page_size)
            after = 0
            if request.page.page_token:
                position = decode_token(request.page.page_token, scope={"members": conversation_id})
                after = position_after(position.get("after"))
            found = await self.store.members(conversation_id, after, size + 1)
        response = ListMembersResponse(members=[_member(m) for m in found[:size]])
        response.page.SetInParent()  # always present, so clients need not check for None
        if len(found) > size:
            response.page.next_page_token = encode_token(
                {"members": conversation_id, "after": found[size - 1].position}
            )
        await stream.send_message(response)


def _owner(member_ids: list[str]) -> str:
    """Who owns a new conversation: the calling user, or the first member a trusted caller names.

    An open server, or a service that may act for users (``messages:impersonate`` or
    ``messages:admin``), names the owner as ``member_ids[0]``.
    """
    caller = current_identity()
    if caller is not None and caller.kind is IdentityKind.USER:
        return caller.subject
    if caller is not None and not (caller.may_act_for_others() or caller.is_admin(MESSAGES_ADMIN)):
        raise PermissionDenied(
            "a service account creates conversations only with messages:impersonate or messages:admin",
            field="member_ids",
        )
    if not member_ids:
        raise InvalidArgument(
            "name the owner as member_ids[0]: this caller is not a user", field="member_ids"
        )
    return member_ids[0]


def _member(membership: Membership) -> conversation_service_pb2.Member:
    return conversation_service_pb2.Member(
        conversation_id=membership.conversation_id,
        user_id=membership.user_id,
        role=conversation_service_pb2.MemberRole.Value(f"MEMBER_ROLE_{membership.role.name}"),
        joined_at=timestamp(membership.joined_at_ns),
    )
