#!/usr/bin/env python3
"""Google's own Pub/Sub client (google-cloud-pubsub) as an independent peer of fashiond's tests.

Talks to the emulator named by PUBSUB_EMULATOR_HOST.

  pubsub_client.py publish --project P --topic T [--ordering-key K] FILE...
      publishes each file's bytes with the stream contract's attributes, in order; prints
      `<message id> <file>` per message.
  pubsub_client.py pull --project P --subscription S --count N
      pulls until N messages arrived, acknowledges them, prints one JSON object per message
      (message_id, data as base64, attributes, ordering_key).
  pubsub_client.py subscribe --project P --topic T --subscription S
      creates topic T if it is missing and subscription S on it.
"""
import argparse
import base64
import json
import os
import sys
import time

from google.api_core.exceptions import AlreadyExists
from google.cloud import pubsub_v1


def content_type(path):
    lower = path.lower()
    if lower.endswith(".png"):
        return "image/png"
    if lower.endswith((".jpg", ".jpeg")):
        return "image/jpeg"
    if lower.endswith(".json"):
        return "application/json"
    return "application/octet-stream"


def publish(args):
    options = pubsub_v1.types.PublisherOptions(enable_message_ordering=bool(args.ordering_key))
    publisher = pubsub_v1.PublisherClient(publisher_options=options)
    topic = publisher.topic_path(args.project, args.topic)
    futures = []
    for path in args.files:
        with open(path, "rb") as handle:
            data = handle.read()
        attributes = {
            "content-type": content_type(path),
            "fashion-request-id": "py-" + os.path.basename(path),
            "fashion-submitted-at": str(int(time.time() * 1000)),
        }
        kwargs = {"ordering_key": args.ordering_key} if args.ordering_key else {}
        futures.append((path, publisher.publish(topic, data, **kwargs, **attributes)))
    for path, future in futures:
        print(future.result(timeout=60), path, flush=True)


def pull(args):
    subscriber = pubsub_v1.SubscriberClient()
    subscription = subscriber.subscription_path(args.project, args.subscription)
    received = []
    deadline = time.time() + 60
    while len(received) < args.count and time.time() < deadline:
        response = subscriber.pull(request={"subscription": subscription, "max_messages": args.count - len(received)}, timeout=30)
        if response.received_messages:
            subscriber.acknowledge(request={"subscription": subscription,
                                            "ack_ids": [m.ack_id for m in response.received_messages]})
        received.extend(response.received_messages)
    for item in received:
        message = item.message
        print(json.dumps({"message_id": message.message_id, "data": base64.b64encode(message.data).decode(),
                          "attributes": dict(message.attributes), "ordering_key": message.ordering_key}), flush=True)
    if len(received) < args.count:
        sys.exit("received %d of %d messages" % (len(received), args.count))


def subscribe(args):
    """Creates the topic (if missing) and a subscription on it, so nothing published later is missed."""
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(args.project, args.topic)
    try:
        publisher.create_topic(request={"name": topic})
    except AlreadyExists:
        pass
    subscription = subscriber.subscription_path(args.project, args.subscription)
    subscriber.create_subscription(request={"name": subscription, "topic": topic})
    print(subscription, flush=True)


def main():
    if not os.environ.get("PUBSUB_EMULATOR_HOST"):
        sys.exit("PUBSUB_EMULATOR_HOST must name the emulator (the tests never talk to Google)")
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("publish")
    p.add_argument("--project", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--ordering-key", default="")
    p.add_argument("files", nargs="+")
    s = commands.add_parser("pull")
    s.add_argument("--project", required=True)
    s.add_argument("--subscription", required=True)
    s.add_argument("--count", type=int, required=True)
    c = commands.add_parser("subscribe")
    c.add_argument("--project", required=True)
    c.add_argument("--topic", required=True)
    c.add_argument("--subscription", required=True)
    args = parser.parse_args()
    {"publish": publish, "pull": pull, "subscribe": subscribe}[args.command](args)


if __name__ == "__main__":
    main()
