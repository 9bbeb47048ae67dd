"""Short texts of different kinds, written for this repo, for comparing tokenizers.

Why these kinds: a tokenizer trained on English prose compresses English well and everything
else worse, and the gap is the point of a comparison. Code shows what the split pattern does to
indentation; numbers show how digits are grouped; other scripts and emoji show the cost of
multi-byte UTF-8 characters; whitespace runs show how spaces and newlines are merged.
All texts are original to vocablab (no third-party text), so they can ship with the repo.
"""

SAMPLE_TEXTS = {
    "english": (
        "The lighthouse keeper counted the ships each evening and wrote their names in a "
        "small green book. Most nights nothing happened; the fog came in, the lamp turned, "
        "and the sea made the same slow noise it had made for a hundred years. But on the "
        "night of the storm, a boat with no name drifted past the rocks, and nobody on board "
        "answered when he called out to them.\n"
    ),
    "python": (
        "def moving_average(values, window=3):\n"
        "    \"\"\"Return the mean of each run of `window` consecutive values.\"\"\"\n"
        "    if window <= 0:\n"
        "        raise ValueError(f\"window must be positive, got {window}\")\n"
        "    out = []\n"
        "    for i in range(len(values) - window + 1):\n"
        "        chunk = values[i:i + window]\n"
        "        out.append(sum(chunk) / window)\n"
        "    return out\n"
        "\n"
        "\n"
        "class Counter:\n"
        "    def __init__(self):\n"
        "        self.counts = {}\n"
        "\n"
        "    def add(self, key):\n"
        "        self.counts[key] = self.counts.get(key, 0) + 1\n"
    ),
    "numbers": (
        "12 + 345 = 357\n"
        "6789 * 42 = 285138\n"
        "3.14159 / 2 = 1.570795\n"
        "2024-05-17 08:30:00, total: 1,234,567.89 EUR\n"
        "(17 - 4) ** 2 = 169; 1000000 / 8 = 125000\n"
        "phone +44 20 7946 0958, order #000451, pi ~ 3.1415926535\n"
    ),
    "french": (
        "Le boulanger ouvre sa boutique avant l'aube. Il dit que le pain d'hier a toujours "
        "un goût différent, même si la recette n'a pas changé depuis vingt ans.\n"
    ),
    "german": (
        "Die Straßenbahn hielt zwischen zwei Haltestellen, und niemand wusste warum. "
        "Nach zehn Minuten fuhr sie weiter, als wäre nichts geschehen.\n"
    ),
    "russian": (
        "Вечером в библиотеке было тихо. Старый учитель читал письмо, "
        "которое пришло без обратного адреса.\n"
    ),
    "chinese": "今天下午下了一场大雨。我们在咖啡馆里等了一个小时，然后一起走回家。\n",
    "japanese": "駅の近くに新しい本屋ができました。週末に友だちと行ってみるつもりです。\n",
    "hindi": "बारिश के बाद बगीचे में सब कुछ हरा दिखता है। बच्चे बाहर खेलने के लिए दौड़ पड़े।\n",
    "emoji": "Great job 🎉🎉 see you at 🍕 night! 👩‍💻 coded it, 🇯🇵 trip next 🚆✨ 👍🏽\n",
    "whitespace": (
        "a    b        c\n"
        "\n\n\n"
        "\tindented with a tab\n"
        "        eight spaces\n"
        "trailing spaces   \n"
        "   \n"
        "x\u00a0y  \r\n"
        "end"
    ),
}
