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
from edgesplit.device.text.intents import (
    HELD_OUT_TEMPLATES,
    INTENTS,
    LABELS,
    OUT_OF_SCOPE,
    SLOTS,
)

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
    OUT_OF_SCOPE: [],  # see OUT_OF_SCOPE_LIBRARY below
}

# Out-of-scope requests by category, so the library covers what people ask an assistant that none
# of the 20 intents serves. Written from the category names (not from any evaluation set). The last
# two templates of every category are held out for validation (thresholds are fitted there).
# "near misses" share words with an intent (music, coffee, photo, battery, time, weather, noise,
# messages, maps, reading, translation) but ask something none of the intents does.
OUT_OF_SCOPE_LIBRARY: dict[str, list[str]] = {
    "general knowledge": [
        "what is the capital of {country}",
        "who was {person}",
        "when was {person} born",
        "how old is the universe",
        "what's the tallest mountain in {country}",
        "who wrote Romeo and Juliet",
        "what language do they speak in {country}",
        "how many people live in {city}",
        "why is the ocean salty",
        "which planet is closest to the sun",
        "who painted the Mona Lisa",
        "what's the longest river in the world",
    ],
    "science and explanations": [
        "explain {topic} to me",
        "how does {topic} work",
        "what's the speed of light",
        "why do leaves change colour in autumn",
        "what is DNA made of",
        "how do airplanes stay in the air",
        "what causes earthquakes",
        "can you explain gravity simply",
        "what's the difference between a virus and bacteria",
        "how do magnets work",
    ],
    "maths and units": [
        "what is {number} plus {number}",
        "what's {number} divided by {number}",
        "what's {number} times {number}",
        "square root of {number}",
        "convert {number} miles to kilometres",
        "how many ounces in a pound",
        "what's 15 percent of {number}",
        "is {number} a prime number",
        "solve x squared minus four equals zero",
        "how many grams are in a cup of flour",
    ],
    "smart home": [
        "turn on {thing}",
        "switch off {thing}",
        "set {thing} to {number}",
        "dim the living room lights",
        "lock the front door",
        "set the thermostat to 21 degrees",
        "is the garage door open",
        "start the robot vacuum",
        "turn the heating up in the bedroom",
        "close the blinds",
        "show the doorbell camera on the TV",
    ],
    "banking and money": [
        "pay my electricity bill",
        "send 20 dollars to {contact} by bank transfer",
        "what's my account balance",
        "what's the exchange rate for {country}",
        "how's the stock market today",
        "should I invest in {topic}",
        "how much did I spend on groceries this month",
        "transfer money to my savings account",
        "what's the price of bitcoin",
        "is my credit card payment due",
    ],
    "shopping and bookings": [
        "buy new shoes online",
        "order {food} for delivery",
        "book a hotel in {city}",
        "buy tickets for {sport}",
        "add eggs to my shopping list",
        "find me a cheap flight to {city}",
        "make a restaurant reservation for {time}",
        "track my package",
        "book a taxi to pick me up",
        "find a plumber near me",
        "rent a car for the weekend",
    ],
    "health": [
        "I have a headache, what should I take",
        "is {food} healthy",
        "how many calories are in {food}",
        "what are the symptoms of the flu",
        "how much water should I drink a day",
        "book a doctor's appointment",
        "how many steps did I walk today",
        "what's a normal heart rate",
        "how can I sleep better",
        "is it bad to crack your knuckles",
    ],
    "sports": [
        "what's the score in {sport}",
        "who won the game last night",
        "when does the {sport} season start",
        "how many players are on a {sport} team",
        "who is the best {sport} player ever",
        "show me the league table",
        "how long is a marathon",
        "what are the rules of {sport}",
        "when is the next world cup",
    ],
    "food and recipes": [
        "what should I cook for dinner",
        "give me a recipe for {food}",
        "how long do I boil an egg",
        "what can I make with rice and eggs",
        "how do I make {food} at home",
        "what's a good wine with fish",
        "what's for lunch",
        "is it safe to eat raw cookie dough",
        "how do I bake bread",
        "substitute for butter in baking",
    ],
    "chit-chat": [
        "what's your name",
        "are you a robot",
        "do you love me",
        "how are you today",
        "I'm bored",
        "hello there",
        "good morning",
        "what can you do",
        "who made you",
        "do you have feelings",
        "I'm feeling sad today",
        "you're awesome",
    ],
    "jokes and fun": [
        "tell me a joke",
        "tell me a story",
        "give me a fun fact",
        "write a poem about {topic}",
        "sing me a song",
        "let's play a game",
        "tell me a riddle",
        "flip a coin",
        "roll a dice",
        "say something funny",
    ],
    "advice and writing": [
        "give me advice about my career",
        "help me write an email to my landlord",
        "summarize the history of {topic}",
        "compare {topic} and {topic}",
        "what should I name my cat",
        "how do I ask for a raise",
        "write a cover letter for me",
        "what are good gift ideas for my dad",
        "how do I learn {language} fast",
        "what's a good book to read",
    ],
    "device and app help": [
        "how do I reset my password",
        "open the calculator app",
        "update my phone",
        "why is my wifi so slow",
        "delete my old photos from the cloud",
        "how do I pair new headphones",
        "clear my browser history",
        "install the banking app",
        "back up my phone",
    ],
    "filler and fragments": [
        "okay",
        "never mind",
        "thanks",
        "hmm",
        "wait what",
        "forget it",
        "that's all",
        "yes",
        "cancel that",
    ],
    "near misses: music and media": [
        "who was the lead singer of {artist}",
        "when did {artist} release their first album",
        "why do songs get stuck in my head",
        "what's the history of {genre} music",
        "how many albums has {artist} sold",
        "how do I learn to play the guitar",
        "who invented headphones",
        "what does a music producer do",
        "what year did the Walkman come out",
        "who wrote the lyrics of this song originally",
    ],
    "near misses: coffee and ordering": [
        "how much do coffee beans cost per kilo",
        "how long does coffee stay in your body",
        "where does coffee come from",
        "is coffee bad for your heart",
        "how do I make cold brew at home",
        "what's the difference between arabica and robusta",
        "how many cups of coffee is too much",
        "who invented the espresso machine",
        "why does coffee make me sleepy",
    ],
    "near misses: photos and cameras": [
        "how do cameras work",
        "what's the best camera for beginners",
        "who invented photography",
        "how do I edit a photo to look brighter",
        "what is aperture in a camera",
        "tips for taking portraits",
        "how many megapixels do I need",
        "why are my pictures blurry",
        "how does a camera lens focus",
    ],
    "near misses: battery and charging": [
        "which battery should I buy for my car",
        "how do batteries work",
        "what's the best phone to buy",
        "are lithium batteries dangerous",
        "how do I recycle old batteries",
        "how long do electric car batteries last",
        "what does mAh mean",
        "is it bad to charge my phone overnight",
        "which power bank is the best",
    ],
    "near misses: time and clocks": [
        "how do time zones work",
        "why do we have daylight saving time",
        "who invented the clock",
        "how many time zones does {country} have",
        "what is Greenwich mean time",
        "how long is a light year",
        "how many seconds are in a year",
        "why are there 24 hours in a day",
        "what is an atomic clock",
    ],
    "near misses: weather science": [
        "how do hurricanes form",
        "what is the weather like on Mars",
        "why is the sky blue",
        "what causes lightning",
        "how do meteorologists predict the weather",
        "what's the hottest temperature ever recorded",
        "why does it snow",
        "what's the difference between weather and climate",
        "how are rainbows made",
    ],
    "near misses: language, places, reading, messages": [
        "how do you pronounce {city}",
        "spell {topic}",
        "what's the meaning of this word",
        "what's the history of {topic}",
        "what's the distance from {city} to {city}",
        "how far is the moon",
        "what is the most spoken language in the world",
        "who invented the telephone",
        "recommend a good novel to read",
        "how many languages are there",
        "what's the best travel destination in {country}",
        "who invented text messaging",
        "how do noise cancelling headphones work",
        "how do I learn to read faster",
    ],
    "chores and the physical world": [
        "clean the house",
        "walk the dog for me",
        "do my homework",
        "fold the laundry",
        "wash the car",
        "cook dinner for me",
        "feed the cat",
        "mow the lawn",
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
    "I'm walking with my hands full, so could you",
    "it's been a long day and I just need you to",
    "before I forget, and sorry if this is a weird way to put it,",
    "my friend told me you can do this, so",
    "hmm let me think... ok",
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
    "because I really don't have time to do it myself",
    "or whatever is easiest for you",
    "I think that's it",
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


def _out_of_scope_templates(split: str) -> list[str]:
    """The library's templates for ``split``: the last two of each category are validation;
    templates that intents.py already lists stay in its own split (never in both)."""
    base = INTENTS[OUT_OF_SCOPE]
    out = base[:-HELD_OUT_TEMPLATES] if split == "train" else base[-HELD_OUT_TEMPLATES:]
    for category in OUT_OF_SCOPE_LIBRARY.values():
        chosen = category[:-2] if split == "train" else category[-2:]
        out += [t for t in chosen if t not in base]
    return out


def templates(split: str) -> dict[str, list[str]]:
    """The cloud's templates per intent: 'train' = intents.py training + extra; 'val' = held out.

    'val' holds the held-out templates of intents.py (as the device's test set), the last two
    extra templates of each intent and of each out-of-scope category: thresholds are chosen on
    it, never on an independent evaluation set.
    """
    if split not in ("train", "val"):
        raise ValueError(f"split={split!r}: expected 'train' or 'val'")
    out: dict[str, list[str]] = {}
    for label in LABELS:
        if label == OUT_OF_SCOPE:
            out[label] = _out_of_scope_templates(split)
            continue
        base, extra = INTENTS[label], EXTRA_TEMPLATES[label]
        val = base[-HELD_OUT_TEMPLATES:] + extra[-2:]
        # A training template equal to a held-out one would leak it into training.
        out[label] = val if split == "val" else [t for t in base + extra[:-2] if t not in val]
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
