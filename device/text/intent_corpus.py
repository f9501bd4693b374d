"""The cloud intent model's larger training corpus: more sentence shapes, more out-of-scope, noise.

``device/text/intents.py`` has 6 training templates per intent, enough for the phone's small head.
The cloud classifier is trained on those plus the templates below (written after the independent
evaluation set ``tests/data/intent_eval.jsonl`` was committed, without copying its sentences),
a broad out-of-scope library (knowledge, smart home, finance, health, shopping, chit-chat, and near
misses that share words with intents), and three kinds of noise that real requests carry: typos
(dropped, doubled, swapped or neighbouring-key letters), fillers around the request ("um", "hey
so", "thanks"), and casing/punctuation changes. Everything is drawn from a seeded generator.
"""

from __future__ import annotations

import re

import numpy as np
from edgesplit.device.text.intents import HELD_OUT_TEMPLATES, INTENTS, LABELS, SLOTS

EXTRA_SLOTS: dict[str, list[str]] = {
    "genre": ["jazz", "rock", "lo-fi", "hip hop", "classical", "country", "techno", "reggae"],
    "media": ["the music", "the podcast", "the audiobook", "the video", "the song", "this"],
    "food": ["pizza", "sushi", "pasta", "a burger", "pancakes", "curry", "tacos", "soup"],
    "thing": ["the oven", "the sprinklers", "the garage door", "the fan", "the TV"],
    "number": ["12", "48", "365", "1024", "7", "99", "3.5", "250"],
    "person": ["Einstein", "Shakespeare", "Marie Curie", "Napoleon", "Frida Kahlo", "Gandhi"],
    "sport": ["football", "tennis", "basketball", "cricket", "the marathon", "hockey"],
    "object": ["this plant", "that car", "this bird", "the painting", "this bottle", "that bridge"],
    "doc": ["the sign", "this page", "the label", "the menu", "this receipt", "the screen"],
    "message": [
        "I'm on my way",
        "running ten minutes late",
        "see you at the cafe",
        "call me back",
        "happy birthday",
        "dinner is ready",
    ],
}

EXTRA_TEMPLATES: dict[str, list[str]] = {
    "play_music": [
        "play {genre}",
        "put some {genre} music on",
        "I'd love to hear a bit of {artist}",
        "start a {genre} playlist",
        "shuffle songs by {artist}",
        "music by {artist} please",
        "resume my playlist",
        "could you play the radio",
    ],
    "pause_media": [
        "pause {media}",
        "stop {media} for now",
        "hit pause",
        "can you hold {media} a moment",
        "halt {media}",
        "wait, stop it there",
        "pause it please",
    ],
    "skip_track": [
        "skip to the next song",
        "next track please",
        "skip ahead",
        "move to the next song in the queue",
        "not this one, next",
        "change the song",
        "jump to the next track",
    ],
    "volume_up": [
        "turn the volume up",
        "louder please",
        "increase the sound",
        "I can't hear it, turn it up",
        "raise the volume",
        "make {media} louder",
        "volume up a bit",
    ],
    "volume_down": [
        "turn the volume down",
        "quieter please",
        "lower the sound",
        "it's too loud",
        "reduce the volume",
        "make {media} quieter",
        "volume down a little",
    ],
    "call_contact": [
        "phone {contact}",
        "ring {contact}",
        "dial {contact}",
        "place a call to {contact}",
        "video call {contact}",
        "I need to speak to {contact}, call them",
        "get {contact} on the phone",
    ],
    "send_message": [
        "text {contact} {message}",
        "message {contact} that {message}",
        "send {contact} a text saying {message}",
        "tell {contact} by text that {message}",
        "write a message to {contact}",
        "reply to {contact} with {message}",
        "WhatsApp {contact} {message}",
    ],
    "translate": [
        "how do you say hello in {language}",
        "translate this into {language}",
        "what is this in {language}",
        "say good night in {language}",
        "what does this word mean in {language}",
        "help me talk to this person in {language}",
        "translate what she is saying",
    ],
    "navigate": [
        "directions to {place}",
        "take me to {place}",
        "how do I get to {place}",
        "route to {place}",
        "walk me to {place}",
        "show me the way to {place}",
        "I'm lost, get me to {place}",
    ],
    "visual_question": [
        "what is {object}",
        "what am I looking at right now",
        "identify {object}",
        "what breed is this dog",
        "what color is {object}",
        "tell me about {object} in front of me",
        "describe what you see",
        "what kind of {object} is this",
    ],
    "read_text": [
        "read {doc} to me",
        "read {doc} out loud",
        "what is written on {doc}, read it",
        "read aloud the text on {doc}",
        "read this for me",
        "can you read {doc}",
        "read me the words on {doc}",
    ],
    "set_reminder": [
        "remind me to {task} at {time}",
        "don't let me forget to {task}",
        "make a reminder to {task}",
        "add a reminder for {time} to {task}",
        "remind me {time} about {task}",
        "I need a reminder to {task}",
        "nudge me to {task} {time}",
    ],
    "set_timer": [
        "timer for {duration}",
        "start a {duration} countdown",
        "count down {duration}",
        "set a {duration} timer",
        "let me know when {duration} have passed",
        "start a timer please",
        "time {duration} for me",
    ],
    "weather": [
        "weather in {city}",
        "will it rain in {city}",
        "what's the temperature outside",
        "is it sunny {time}",
        "forecast for {city}",
        "should I bring a jacket today",
        "how hot will it get today",
    ],
    "take_photo": [
        "take a photo",
        "snap a picture",
        "photograph this",
        "capture this moment",
        "take a picture of {object}",
        "shoot a pic",
        "grab a photo now",
    ],
    "battery_status": [
        "battery level",
        "how much charge is left",
        "is the battery low",
        "how long will the battery last",
        "do I need to charge my glasses",
        "what percent is my battery",
        "check the power level",
    ],
    "noise_cancelling": [
        "turn on noise cancellation",
        "turn off noise cancelling",
        "enable ANC",
        "switch to ambient mode",
        "block the noise around me",
        "transparency mode on",
        "cancel the background noise",
    ],
    "order_coffee": [
        "order {drink}",
        "get me {drink} from the cafe",
        "I'd like to order {drink}",
        "buy {drink} for pickup",
        "place an order for {drink}",
        "my usual coffee order please",
        "can you order {drink} to go",
    ],
    "time_query": [
        "what time is it",
        "current time please",
        "what's the time now",
        "tell me the time in {city}",
        "what time is it in {city}",
        "do you have the time",
        "clock check",
    ],
    "do_not_disturb": [
        "do not disturb on",
        "turn off notifications for {duration}",
        "block calls for {duration}",
        "enable focus mode until {time}",
        "silence my phone",
        "no calls or messages please",
        "turn do not disturb off",
    ],
    "out_of_scope": [
        "what is {number} plus {number}",
        "what's {number} divided by {number}",
        "who was {person}",
        "tell me about {person}",
        "when was {person} born",
        "what's the score in {sport}",
        "order {food} for delivery",
        "turn on {thing}",
        "switch off {thing}",
        "set {thing} to {number}",
        "book a hotel in {city}",
        "buy tickets for {sport}",
        "what's the exchange rate for {country}",
        "how's the stock market today",
        "pay my electricity bill",
        "send 20 dollars to {contact} by bank transfer",
        "what's the meaning of this word",
        "spell {topic}",
        "how do I learn {language} fast",
        "what's the history of {topic}",
        "how does {topic} work",
        "is {food} healthy",
        "I have a headache, what should I take",
        "what's your name",
        "are you a robot",
        "do you love me",
        "tell me a story",
        "how old is the universe",
        "what's the distance from {city} to {city}",
        "how many people live in {city}",
        "open the calculator app",
        "clean the house",
        "what's for lunch",
        "I'm bored",
        "okay",
        "never mind",
        "hello there",
        "thanks",
        "what can you do",
        "how long does coffee stay in your body",
        "why do songs get stuck in my head",
        "what's the best phone to buy",
        "how do batteries work",
        "who invented headphones",
        "how do you pronounce {city}",
        "what is the weather like on Mars",
        "buy new shoes online",
        "find a plumber near me",
        "make a restaurant reservation for {time}",
        "what's the speed of light",
        "how do I reset my password",
        "give me a fun fact",
    ],
}

FILLERS_BEFORE = [
    "hey",
    "um",
    "hey so",
    "okay so",
    "quick question,",
    "could you please",
    "I was wondering if you could",
    "sorry to bother you but",
    "hi there,",
    "so basically",
    "listen,",
    "alright,",
]
FILLERS_AFTER = [
    "please",
    "thanks",
    "thank you so much",
    "if you don't mind",
    "right now",
    "when you get a chance",
    "I'm in a bit of a hurry",
    "that would be great",
    "ok?",
    "cheers",
]
_KEYS = "qwertyuiopasdfghjklzxcvbnm"
_SLOT = re.compile(r"\{(\w+)\}")


def _fill(template: str, rng: np.random.Generator) -> str:
    slots = SLOTS | EXTRA_SLOTS
    return _SLOT.sub(lambda m: str(rng.choice(slots[m.group(1)])), template)


def typo(text: str, rng: np.random.Generator, rate: float = 0.06) -> str:
    """Drop, double, swap or substitute letters: what fast thumbs and speech recognisers do."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isalpha() and rng.random() < rate:
            op = int(rng.integers(4))
            if op == 0:  # drop
                i += 1
                continue
            if op == 1:  # double
                out += [c, c]
            elif op == 2 and i + 1 < len(text):  # swap with the next letter
                out += [text[i + 1], c]
                i += 2
                continue
            else:  # a near key
                k = _KEYS.find(c.lower())
                out.append(_KEYS[(k + int(rng.choice([-1, 1]))) % len(_KEYS)] if k >= 0 else c)
        else:
            out.append(c)
        i += 1
    return "".join(out)


def augment(text: str, rng: np.random.Generator) -> str:
    """One noisy variant of ``text``: fillers, typos, casing and punctuation."""
    if rng.random() < 0.4:
        text = f"{rng.choice(FILLERS_BEFORE)} {text}"
    if rng.random() < 0.35:
        text = f"{text} {rng.choice(FILLERS_AFTER)}"
    if rng.random() < 0.5:
        text = typo(text, rng)
    r = rng.random()
    if r < 0.3:
        text = text.lower().replace(",", "").replace("'", "")
    elif r < 0.4:
        text = text[:1].upper() + text[1:] + rng.choice(["?", ".", "!"])
    return text


def templates(split: str) -> dict[str, list[str]]:
    """The cloud's templates per intent: 'train' = intents.py training + extra; 'val' = held out.

    'val' holds the held-out templates of intents.py (as the device's test set) and the last extra
    template of each intent: thresholds are chosen on it, never on the independent set.
    """
    out: dict[str, list[str]] = {}
    for label in LABELS:
        base, extra = INTENTS[label], EXTRA_TEMPLATES[label]
        if split == "train":
            out[label] = base[:-HELD_OUT_TEMPLATES] + extra[:-2]
        elif split == "val":
            out[label] = base[-HELD_OUT_TEMPLATES:] + extra[-2:]
        else:
            raise ValueError(f"split={split!r}: expected 'train' or 'val'")
    return out


def corpus(split: str, per_template: int = 12, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """(texts, label indices): each template filled ``per_template`` times, half of them noisy."""
    rng = np.random.default_rng([seed, 0 if split == "train" else 1, 7])
    texts: list[str] = []
    labels: list[int] = []
    for k, label in enumerate(LABELS):
        for t in templates(split)[label]:
            seen: set[str] = set()
            for j in range(per_template):
                text = _fill(t, rng)
                if j % 2:
                    text = augment(text, rng)
                if text not in seen:
                    seen.add(text)
                    texts.append(text)
                    labels.append(k)
    return texts, np.array(labels, dtype=np.int64)
