"""Templated utterances for 20 assistant intents of glasses, earbuds and phones, plus out-of-scope.

Each intent has training templates and held-out templates (the last two of each list): the test
set uses sentence shapes the classifier never saw. Slot values are drawn from a seeded generator.
"""

from __future__ import annotations

import re

import numpy as np

SLOTS = {
    "artist": [
        "Taylor Swift",
        "the Beatles",
        "Miles Davis",
        "Daft Punk",
        "Adele",
        "Bach",
        "Kendrick Lamar",
        "Radiohead",
        "Billie Eilish",
        "Queen",
    ],
    "contact": [
        "mom",
        "Alex",
        "Dr. Patel",
        "my brother",
        "Sarah",
        "the office",
        "grandma",
        "Jamie",
        "my boss",
        "Chen",
    ],
    "place": [
        "the train station",
        "Central Park",
        "the nearest pharmacy",
        "home",
        "the airport",
        "Main Street",
        "the museum",
        "work",
        "a gas station",
        "the hotel",
    ],
    "language": [
        "Spanish",
        "French",
        "Japanese",
        "German",
        "Italian",
        "Mandarin",
        "Korean",
        "Portuguese",
        "Arabic",
        "Dutch",
    ],
    "time": [
        "7 am",
        "noon",
        "tomorrow morning",
        "5 pm",
        "tonight",
        "in an hour",
        "Monday",
        "half past three",
        "8:15",
        "this evening",
    ],
    "duration": [
        "5 minutes",
        "ten minutes",
        "30 seconds",
        "an hour",
        "twenty minutes",
        "two minutes",
        "90 seconds",
        "a quarter of an hour",
        "45 minutes",
        "3 minutes",
    ],
    "task": [
        "buy milk",
        "call the dentist",
        "take my pills",
        "water the plants",
        "pick up the kids",
        "submit the report",
        "charge my glasses",
        "pay rent",
        "book a table",
        "stretch",
    ],
    "drink": [
        "a coffee",
        "a latte",
        "a flat white",
        "an espresso",
        "a cappuccino",
        "a tea",
        "an iced americano",
        "a mocha",
        "a hot chocolate",
        "a cold brew",
    ],
    "city": [
        "Paris",
        "Tokyo",
        "Boston",
        "Lagos",
        "Sydney",
        "Berlin",
        "Toronto",
        "Lima",
        "Seoul",
        "Madrid",
    ],
    "topic": [
        "black holes",
        "the French revolution",
        "photosynthesis",
        "inflation",
        "the stock market",
        "quantum computing",
        "ancient Rome",
        "climate change",
        "vaccines",
        "jazz history",
    ],
    "country": [
        "Peru",
        "Kenya",
        "Norway",
        "Vietnam",
        "Chile",
        "Egypt",
        "Canada",
        "India",
        "Greece",
        "Mexico",
    ],
}

INTENTS: dict[str, list[str]] = {
    "play_music": [
        "play some {artist}",
        "put on {artist}",
        "I want to listen to {artist}",
        "start playing music by {artist}",
        "play my favourite songs",
        "can you play a song from {artist}",
        "let's hear something by {artist}",
        "queue up {artist} for me",
    ],
    "pause_media": [
        "pause",
        "pause the music",
        "stop playing",
        "hold the music",
        "pause playback",
        "stop the song",
        "freeze the track for a second",
        "can you pause this",
    ],
    "skip_track": [
        "next song",
        "skip this track",
        "skip",
        "play the next one",
        "go to the next track",
        "I don't like this song, skip it",
        "move on to the following song",
        "jump ahead to the next tune",
    ],
    "volume_up": [
        "turn it up",
        "louder please",
        "increase the volume",
        "volume up",
        "make it louder",
        "raise the volume a bit",
        "I can barely hear this",
        "crank up the sound",
    ],
    "volume_down": [
        "turn it down",
        "quieter please",
        "lower the volume",
        "volume down",
        "make it softer",
        "reduce the volume a bit",
        "that's too loud",
        "bring the sound down",
    ],
    "call_contact": [
        "call {contact}",
        "phone {contact}",
        "ring {contact}",
        "dial {contact}",
        "start a call with {contact}",
        "give {contact} a call",
        "get {contact} on the phone",
        "I need to talk to {contact} now",
    ],
    "send_message": [
        "text {contact} that I'm running late",
        "send a message to {contact}",
        "message {contact}",
        "tell {contact} I'll be there soon",
        "write to {contact} saying thanks",
        "send {contact} a text",
        "drop {contact} a quick note",
        "let {contact} know I'm on my way",
    ],
    "translate": [
        "translate this into {language}",
        "how do you say hello in {language}",
        "what does this sign say in {language}",
        "translate what he just said",
        "say thank you in {language}",
        "translate this sign for me",
        "what's that in {language}",
        "help me understand this {language} menu",
    ],
    "navigate": [
        "take me to {place}",
        "navigate to {place}",
        "directions to {place}",
        "how do I get to {place}",
        "find the way to {place}",
        "route me to {place}",
        "guide me to {place}",
        "which way is {place}",
    ],
    "visual_question": [
        "what am I looking at",
        "what is this",
        "what kind of plant is this",
        "describe what's in front of me",
        "what building is that",
        "can you tell me what this object is",
        "identify what I'm seeing",
        "what breed is this dog",
    ],
    "read_text": [
        "read this sign",
        "read the menu to me",
        "what does this label say",
        "read this page aloud",
        "read the text in front of me",
        "read the sign out loud",
        "tell me what's written here",
        "can you read this letter for me",
    ],
    "set_reminder": [
        "remind me to {task} at {time}",
        "set a reminder to {task}",
        "don't let me forget to {task}",
        "remind me {time} to {task}",
        "create a reminder: {task}",
        "add a reminder to {task} {time}",
        "make sure I remember to {task}",
        "ping me at {time} about {task}",
    ],
    "set_timer": [
        "set a timer for {duration}",
        "timer {duration}",
        "start a {duration} timer",
        "count down {duration}",
        "set an alarm in {duration}",
        "time {duration} for me",
        "let me know when {duration} have passed",
        "start counting down from {duration}",
    ],
    "weather": [
        "what's the weather like",
        "will it rain {time}",
        "weather in {city}",
        "is it cold outside",
        "do I need an umbrella",
        "what's the forecast for {city}",
        "how hot will it be {time}",
        "is it going to be sunny in {city}",
    ],
    "take_photo": [
        "take a picture",
        "take a photo",
        "snap a photo of this",
        "capture this",
        "record a video",
        "take a snapshot",
        "grab a shot of this view",
        "save a picture of what I see",
    ],
    "battery_status": [
        "how much battery is left",
        "battery level",
        "is my battery low",
        "how much charge do my glasses have",
        "check the battery",
        "what's my battery percentage",
        "will my earbuds last the day",
        "how long until the battery dies",
    ],
    "noise_cancelling": [
        "turn on noise cancelling",
        "switch to transparency mode",
        "enable noise cancellation",
        "turn off noise cancelling",
        "let outside sound in",
        "block out the noise",
        "I want to hear my surroundings",
        "cancel the background noise",
    ],
    "order_coffee": [
        "order {drink}",
        "get me {drink}",
        "I'd like to order {drink}",
        "buy {drink} from the cafe",
        "order {drink} for pickup",
        "can you order me {drink}",
        "place an order for {drink}",
        "I want {drink} from my usual place",
    ],
    "time_query": [
        "what time is it",
        "tell me the time",
        "what's the time in {city}",
        "current time",
        "what time is it in {city}",
        "do you know the time",
        "how late is it",
        "what hour is it now",
    ],
    "do_not_disturb": [
        "turn on do not disturb",
        "silence my notifications",
        "mute notifications",
        "don't disturb me for {duration}",
        "enable focus mode",
        "stop all alerts",
        "hold my notifications until {time}",
        "no interruptions please",
    ],
    "out_of_scope": [
        "explain {topic} to me",
        "what is the capital of {country}",
        "write a poem about {topic}",
        "who invented the telephone",
        "tell me a joke",
        "summarize the history of {topic}",
        "what should I cook for dinner",
        "how far is the moon",
        "what's the population of {country}",
        "give me advice about my career",
        "compare {topic} and {topic}",
        "why is the sky blue",
    ],
}

OUT_OF_SCOPE = "out_of_scope"
LABELS = tuple(INTENTS)
HELD_OUT_TEMPLATES = 2  # the last templates of each intent are only used for testing
_SLOT = re.compile(r"\{(\w+)\}")


def fill(template: str, rng: np.random.Generator) -> str:
    return _SLOT.sub(lambda m: str(rng.choice(SLOTS[m.group(1)])), template)


def utterances(split: str, per_template: int = 10, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """(texts, label indices) for ``split`` in {'train', 'test'}; templates never cross splits."""
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r}: expected 'train' or 'test'")
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    texts, labels = [], []
    for k, templates in enumerate(INTENTS.values()):
        chosen = (
            templates[:-HELD_OUT_TEMPLATES] if split == "train" else templates[-HELD_OUT_TEMPLATES:]
        )
        for t in chosen:
            seen: set[str] = set()
            for _ in range(per_template):
                text = fill(t, rng)
                if text not in seen:
                    seen.add(text)
                    texts.append(text)
                    labels.append(k)
    return texts, np.array(labels, dtype=np.int64)
