"""Drives a Hearth server with matrix-nio's AsyncClient (a second client library).

Usage: python3 scenarios.py BASE_URL USERS_JSON SCENARIO...

USERS_JSON maps names (alice, bob, carol, dave) to {"user_id", "password"}; the
users already exist (the Node test registers them). Each scenario checks what nio
sees and raises on a mismatch; on success the script prints one line
`RESULT <json>` with what it observed, for the Node test to check again, and
exits 0. A failed check exits 1 with the reason on stderr. A scenario that cannot
run here (the encrypted one without olm) reports {"skipped": reason}.
"""

import asyncio
import json
import sys
import tempfile
import time
from urllib.parse import quote

import nio

SYNC_FILTER = {"room": {"timeline": {"limit": 50}}}


class CheckFailed(Exception):
    pass


def check(cond, message):
    if not cond:
        raise CheckFailed(message)


def ok(resp, kind, what):
    """The response is of the expected type, or the check fails with the error nio got."""
    check(isinstance(resp, kind), f"{what}: expected {kind.__name__}, got {type(resp).__name__}: {resp}")
    return resp


async def login(base_url, user, device_name, config=None, store_path=""):
    client = nio.AsyncClient(base_url, user["user_id"], store_path=store_path, config=config)
    resp = ok(await client.login(user["password"], device_name=device_name), nio.LoginResponse, f"login {user['user_id']}")
    check(resp.user_id == user["user_id"], f"login answered user {resp.user_id}")
    return client


async def sync_until(client, pred, what, timeout=20.0):
    """Syncs incrementally, collecting every joined room's timeline events, until pred(collected, response) holds."""
    collected = []
    deadline = time.monotonic() + timeout
    while True:
        resp = ok(await client.sync(timeout=500, sync_filter=SYNC_FILTER), nio.SyncResponse, f"sync ({what})")
        for room_id, info in resp.rooms.join.items():
            collected.extend((room_id, ev) for ev in info.timeline.events)
        if pred(collected, resp):
            return collected, resp
        check(time.monotonic() < deadline, f"timed out waiting for: {what}")


def src(ev):
    return ev.source if isinstance(ev.source, dict) else {}


async def scenario_rooms(base_url, users):
    """Create, invite, join, messages in order, an edit, a reaction, name/topic state, leave."""
    alice = await login(base_url, users["alice"], "nio alice")
    bob = await login(base_url, users["bob"], "nio bob")
    try:
        a_id, b_id = users["alice"]["user_id"], users["bob"]["user_id"]
        await alice.sync(timeout=0, sync_filter=SYNC_FILTER)
        await bob.sync(timeout=0, sync_filter=SYNC_FILTER)

        created = ok(await alice.room_create(name="Nio room", topic="first topic"), nio.RoomCreateResponse, "room_create")
        room_id = created.room_id
        ok(await alice.room_invite(room_id, b_id), nio.RoomInviteResponse, "room_invite")

        _, resp = await sync_until(bob, lambda _c, r: room_id in r.rooms.invite, "bob sees the invite")
        inviter = [
            e.sender
            for e in resp.rooms.invite[room_id].invite_state
            if isinstance(e, nio.InviteMemberEvent) and e.state_key == b_id and e.membership == "invite"
        ]
        check(inviter == [a_id], f"invite state names the invite from {a_id}: {inviter}")
        joined = ok(await bob.join(room_id), nio.JoinResponse, "join")
        check(joined.room_id == room_id, f"join answered room {joined.room_id}")

        # Alice sees Bob join before she writes.
        await sync_until(
            alice,
            lambda c, _r: any(
                rid == room_id and isinstance(e, nio.RoomMemberEvent) and e.state_key == b_id and e.membership == "join"
                for rid, e in c
            ),
            "alice sees bob join",
        )
        # Bob catches up to the join, so what follows is what an incremental sync brings.
        await sync_until(bob, lambda _c, r: room_id in r.rooms.join or room_id in bob.rooms, "bob's room after join")

        bodies = ["one", "two", "three"]
        sent = []
        for body in bodies:
            r = ok(await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body}), nio.RoomSendResponse, "send")
            sent.append(r.event_id)
        edit = ok(
            await alice.room_send(
                room_id,
                "m.room.message",
                {
                    "msgtype": "m.text",
                    "body": "* two (edited)",
                    "m.new_content": {"msgtype": "m.text", "body": "two (edited)"},
                    "m.relates_to": {"rel_type": "m.replace", "event_id": sent[1]},
                },
            ),
            nio.RoomSendResponse,
            "send edit",
        ).event_id
        reaction = ok(
            await bob.room_send(room_id, "m.reaction", {"m.relates_to": {"rel_type": "m.annotation", "event_id": sent[0], "key": "👍"}}),
            nio.RoomSendResponse,
            "send reaction",
        ).event_id
        ok(await alice.room_put_state(room_id, "m.room.name", {"name": "Renamed by nio"}), nio.RoomPutStateResponse, "name")
        ok(await alice.room_put_state(room_id, "m.room.topic", {"topic": "second topic"}), nio.RoomPutStateResponse, "topic")

        def seen_all(c, _r):
            return any(rid == room_id and isinstance(e, nio.RoomTopicEvent) and e.topic == "second topic" for rid, e in c)

        events, _ = await sync_until(bob, seen_all, "bob sees messages, edit, reaction, name and topic")
        timeline = [e for rid, e in events if rid == room_id]
        ids = [e.event_id for e in timeline]
        texts = [e for e in timeline if isinstance(e, nio.RoomMessageText)]
        order = [e.body for e in texts]
        check(order == ["one", "two", "three", "* two (edited)"], f"bob's sync gives the messages in order: {order}")
        check([e.event_id for e in texts] == sent + [edit], "bob's message event ids match the sends")
        check(all(e.sender == a_id for e in texts), "the messages come from alice")
        edit_ev = texts[3]
        rel = src(edit_ev).get("content", {}).get("m.relates_to", {})
        check(rel == {"rel_type": "m.replace", "event_id": sent[1]}, f"the edit relates to 'two': {rel}")
        check(src(edit_ev)["content"].get("m.new_content", {}).get("body") == "two (edited)", "the edit carries m.new_content")
        reactions = [e for e in timeline if src(e).get("type") == "m.reaction"]
        check([e.event_id for e in reactions] == [reaction], f"one reaction in bob's timeline: {[e.event_id for e in reactions]}")
        rrel = src(reactions[0])["content"]["m.relates_to"]
        check(rrel == {"rel_type": "m.annotation", "event_id": sent[0], "key": "👍"}, f"the reaction's relation: {rrel}")
        check(ids.index(sent[2]) < ids.index(edit) < ids.index(reaction), "edit after the messages, reaction after the edit")
        names = [e.name for e in timeline if isinstance(e, nio.RoomNameEvent)]
        check(names == ["Renamed by nio"], f"bob's timeline has the rename: {names}")
        room = bob.rooms.get(room_id)
        check(room is not None, "bob's client tracks the room")
        check(room.name == "Renamed by nio", f"bob's room name: {room.name}")
        check(room.topic == "second topic", f"bob's room topic: {room.topic}")
        check(set(room.users) == {a_id, b_id}, f"bob's room members: {sorted(room.users)}")

        # Paginating backwards from the end gives the same events newest first.
        msgs = ok(await bob.room_messages(room_id, start=bob.next_batch, limit=50), nio.RoomMessagesResponse, "room_messages")
        back = [e.body for e in msgs.chunk if isinstance(e, nio.RoomMessageText)]
        check(back == ["* two (edited)", "three", "two", "one"], f"/messages backwards: {back}")

        ok(await bob.room_leave(room_id), nio.RoomLeaveResponse, "room_leave")
        _, resp = await sync_until(bob, lambda _c, r: room_id in r.rooms.leave, "bob's sync lists the room under leave")
        await sync_until(
            alice,
            lambda c, _r: any(
                rid == room_id and isinstance(e, nio.RoomMemberEvent) and e.state_key == b_id and e.membership == "leave"
                for rid, e in c
            ),
            "alice sees bob leave",
        )
        members = alice.rooms[room_id].users
        check(set(members) == {a_id}, f"after the leave alice's room has only her: {sorted(members)}")

        return {
            "room_id": room_id,
            "sent": sent,
            "edit": edit,
            "reaction": reaction,
            "order": order,
            "messages_backwards": back,
            "name": room.name,
            "topic": room.topic,
            "left": True,
        }
    finally:
        await alice.close()
        await bob.close()


async def scenario_e2ee(base_url, users):
    """An encrypted DM between two nio clients with olm: the second decrypts the first's message."""
    if not nio.crypto.ENCRYPTION_ENABLED:
        return {"skipped": "python-olm is not installed (apt-get install python3-olm)"}
    config = nio.AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True)
    with tempfile.TemporaryDirectory() as carol_dir, tempfile.TemporaryDirectory() as dave_dir:
        carol = await login(base_url, users["carol"], "nio carol", config, carol_dir)
        dave = await login(base_url, users["dave"], "nio dave", config, dave_dir)
        try:
            c_id, d_id = users["carol"]["user_id"], users["dave"]["user_id"]
            for client in (carol, dave):
                check(client.should_upload_keys, "a fresh device has keys to upload")
                ok(await client.keys_upload(), nio.KeysUploadResponse, "keys_upload")
                await client.sync(timeout=0, sync_filter=SYNC_FILTER)

            created = ok(
                await carol.room_create(
                    is_direct=True,
                    invite=[d_id],
                    preset=nio.RoomPreset.trusted_private_chat,
                    initial_state=[{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
                ),
                nio.RoomCreateResponse,
                "room_create (encrypted DM)",
            )
            room_id = created.room_id
            await sync_until(dave, lambda _c, r: room_id in r.rooms.invite, "dave sees the DM invite")
            ok(await dave.join(room_id), nio.JoinResponse, "join DM")
            await sync_until(dave, lambda _c, _r: room_id in dave.rooms, "dave's client has the room")
            await sync_until(
                carol,
                lambda _c, _r: room_id in carol.rooms and d_id in carol.rooms[room_id].users,
                "carol sees dave join",
            )
            check(carol.rooms[room_id].encrypted, "carol's client sees the room as encrypted")
            if carol.should_query_keys:
                ok(await carol.keys_query(), nio.KeysQueryResponse, "keys_query")
            check(dave.device_id in carol.device_store[d_id], "carol's device store has dave's device")

            sent = ok(
                await carol.room_send(
                    room_id, "m.room.message", {"msgtype": "m.text", "body": "secret from carol"}, ignore_unverified_devices=True
                ),
                nio.RoomSendResponse,
                "send encrypted",
            ).event_id

            def decrypted(c, _r):
                return any(e.event_id == sent and isinstance(e, nio.RoomMessageText) for _rid, e in c)

            events, _ = await sync_until(dave, decrypted, "dave decrypts carol's message")
            ev = next(e for _rid, e in events if e.event_id == sent)
            check(ev.decrypted, "the message came to dave encrypted and nio decrypted it")
            check(ev.body == "secret from carol", f"decrypted body: {ev.body}")
            check(ev.sender == c_id, f"decrypted sender: {ev.sender}")
            return {"room_id": room_id, "event_id": sent, "body": ev.body, "decrypted": ev.decrypted}
        finally:
            await carol.close()
            await dave.close()


async def scenario_upgrade_thread(base_url, users):
    """A thread with a reply, its summary in the root's bundled aggregations; then a room upgrade that
    the other member follows through the tombstone, and a message in the new room."""
    alice = await login(base_url, users["alice"], "nio alice upgrade")
    dave = await login(base_url, users["dave"], "nio dave")
    try:
        a_id, d_id = users["alice"]["user_id"], users["dave"]["user_id"]
        await alice.sync(timeout=0, sync_filter=SYNC_FILTER)
        await dave.sync(timeout=0, sync_filter=SYNC_FILTER)
        room_id = ok(await alice.room_create(name="Before the upgrade", invite=[d_id]), nio.RoomCreateResponse, "room_create").room_id
        await sync_until(dave, lambda _c, r: room_id in r.rooms.invite, "dave sees the invite")
        ok(await dave.join(room_id), nio.JoinResponse, "join")
        await sync_until(dave, lambda _c, r: room_id in r.rooms.join or room_id in dave.rooms, "dave's room after join")

        root = ok(await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "thread root"}), nio.RoomSendResponse, "send root").event_id
        reply = ok(
            await dave.room_send(
                room_id,
                "m.room.message",
                {"msgtype": "m.text", "body": "in the thread", "m.relates_to": {"rel_type": "m.thread", "event_id": root}},
            ),
            nio.RoomSendResponse,
            "send thread reply",
        ).event_id
        got = ok(await alice.room_get_event(room_id, root), nio.RoomGetEventResponse, "room_get_event root")
        thread = src(got.event).get("unsigned", {}).get("m.relations", {}).get("m.thread", {})
        check(thread.get("count") == 1, f"the root's thread summary counts one reply: {thread}")
        check(thread.get("latest_event", {}).get("event_id") == reply, f"the summary's latest event is the reply: {thread}")

        # The server's /upgrade, through nio's transport: nio's own room_upgrade builds the new room client-side.
        answer = await alice.send(
            "POST",
            f"/_matrix/client/v3/rooms/{quote(room_id)}/upgrade",
            json.dumps({"new_version": "12"}),
            headers={"Authorization": f"Bearer {alice.access_token}", "Content-Type": "application/json"},
        )
        upgraded = await answer.json()
        check(answer.status == 200, f"upgrade answered {answer.status}: {upgraded}")
        new_room = upgraded["replacement_room"]
        # The room is invite-only and the upgrade moves no members: alice invites dave, as Element offers to.
        ok(await alice.room_invite(new_room, d_id), nio.RoomInviteResponse, "invite to the replacement room")
        collected, _ = await sync_until(
            dave,
            lambda c, _r: any(rid == room_id and src(e).get("type") == "m.room.tombstone" for rid, e in c),
            "dave sees the tombstone",
        )
        tombstone = next(src(e) for rid, e in collected if rid == room_id and src(e).get("type") == "m.room.tombstone")
        check(tombstone["content"].get("replacement_room") == new_room, f"tombstone points at {new_room}: {tombstone}")
        ok(await dave.join(new_room), nio.JoinResponse, "join the replacement room")
        create = ok(await dave.room_get_state_event(new_room, "m.room.create"), nio.RoomGetStateEventResponse, "create of the new room")
        predecessor = create.content.get("predecessor", {}).get("room_id")
        check(predecessor == room_id, f"the new room names its predecessor: {create.content}")
        said = ok(await alice.room_send(new_room, "m.room.message", {"msgtype": "m.text", "body": "welcome to the new room"}), nio.RoomSendResponse, "send in new room").event_id
        await sync_until(
            dave,
            lambda c, _r: any(rid == new_room and src(e).get("event_id") == said for rid, e in c),
            "dave gets the message in the new room",
        )
        return {"room_id": room_id, "new_room": new_room, "root": root, "reply": reply, "said": said}
    finally:
        await alice.close()
        await dave.close()


SCENARIOS = {"rooms": scenario_rooms, "e2ee": scenario_e2ee, "upgrade_thread": scenario_upgrade_thread}


async def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    base_url, users = argv[0], json.loads(argv[1])
    result = {}
    for name in argv[2:]:
        result[name] = await SCENARIOS[name](base_url, users)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main(sys.argv[1:])))
    except CheckFailed as e:
        print(f"check failed: {e}", file=sys.stderr)
        sys.exit(1)
