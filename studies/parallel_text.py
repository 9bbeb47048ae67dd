"""A small parallel text: the same six sentences in nine languages, for quirk (c).

Written for vocablab (plain everyday sentences, translated sentence by sentence), so that
"how many more tokens does this language cost" is measured on the same content rather than on
one sentence whose length happens to differ. Sentence i of every language says the same thing.
"""

PARALLEL = {
    "English": [
        "The weather is nice today, so we are going to walk to the market and buy fresh bread.",
        "My sister works in a hospital in the city, and she often comes home late in the evening.",
        "Could you tell me where the nearest train station is?",
        "The children read three books last week and want to go to the library again tomorrow.",
        "We have to finish this report before Friday, because the meeting starts at nine o'clock.",
        "In winter the lake freezes, and many people go skating on it.",
    ],
    "German": [
        "Das Wetter ist heute schön, also gehen wir zu Fuß zum Markt und kaufen frisches Brot.",
        "Meine Schwester arbeitet in einem Krankenhaus in der Stadt und kommt abends oft spät "
        "nach Hause.",
        "Können Sie mir sagen, wo der nächste Bahnhof ist?",
        "Die Kinder haben letzte Woche drei Bücher gelesen und wollen morgen wieder in die "
        "Bibliothek gehen.",
        "Wir müssen diesen Bericht vor Freitag fertigstellen, weil die Besprechung um neun Uhr "
        "beginnt.",
        "Im Winter friert der See zu, und viele Leute gehen darauf Schlittschuh laufen.",
    ],
    "French": [
        "Il fait beau aujourd'hui, alors nous allons marcher jusqu'au marché pour acheter du "
        "pain frais.",
        "Ma sœur travaille dans un hôpital en ville, et elle rentre souvent tard le soir.",
        "Pourriez-vous me dire où se trouve la gare la plus proche ?",
        "Les enfants ont lu trois livres la semaine dernière et veulent retourner à la "
        "bibliothèque demain.",
        "Nous devons terminer ce rapport avant vendredi, car la réunion commence à neuf heures.",
        "En hiver, le lac gèle, et beaucoup de gens vont y patiner.",
    ],
    "Spanish": [
        "Hoy hace buen tiempo, así que vamos a caminar al mercado y comprar pan fresco.",
        "Mi hermana trabaja en un hospital de la ciudad y a menudo vuelve tarde a casa por la "
        "noche.",
        "¿Podría decirme dónde está la estación de tren más cercana?",
        "Los niños leyeron tres libros la semana pasada y quieren volver a la biblioteca mañana.",
        "Tenemos que terminar este informe antes del viernes, porque la reunión empieza a las "
        "nueve.",
        "En invierno el lago se congela, y mucha gente va a patinar sobre él.",
    ],
    "Russian": [
        "Сегодня хорошая погода, поэтому мы пойдём пешком на рынок и купим свежий хлеб.",
        "Моя сестра работает в больнице в городе и часто возвращается домой поздно вечером.",
        "Не могли бы вы сказать, где находится ближайший вокзал?",
        "На прошлой неделе дети прочитали три книги и хотят завтра снова пойти в библиотеку.",
        "Нам нужно закончить этот отчёт до пятницы, потому что совещание начинается в девять "
        "часов.",
        "Зимой озеро замерзает, и многие люди катаются на нём на коньках.",
    ],
    "Greek": [
        "Ο καιρός είναι ωραίος σήμερα, οπότε θα περπατήσουμε μέχρι την αγορά και θα "
        "αγοράσουμε φρέσκο ψωμί.",
        "Η αδερφή μου δουλεύει σε ένα νοσοκομείο στην πόλη και συχνά γυρίζει σπίτι αργά το "
        "βράδυ.",
        "Μπορείτε να μου πείτε πού είναι ο πλησιέστερος σιδηροδρομικός σταθμός;",
        "Τα παιδιά διάβασαν τρία βιβλία την περασμένη εβδομάδα και θέλουν να πάνε ξανά στη "
        "βιβλιοθήκη αύριο.",
        "Πρέπει να τελειώσουμε αυτή την αναφορά πριν από την Παρασκευή, γιατί η συνάντηση "
        "αρχίζει στις εννέα.",
        "Τον χειμώνα η λίμνη παγώνει, και πολλοί άνθρωποι κάνουν πατινάζ πάνω της.",
    ],
    "Hindi": [
        "आज मौसम अच्छा है, इसलिए हम पैदल बाज़ार जाएंगे और ताज़ी रोटी खरीदेंगे।",
        "मेरी बहन शहर के एक अस्पताल में काम करती है, और वह अक्सर शाम को देर से घर आती है।",
        "क्या आप मुझे बता सकते हैं कि सबसे नज़दीकी रेलवे स्टेशन कहाँ है?",
        "बच्चों ने पिछले हफ़्ते तीन किताबें पढ़ीं और वे कल फिर से पुस्तकालय जाना चाहते हैं।",
        "हमें यह रिपोर्ट शुक्रवार से पहले पूरी करनी है, क्योंकि बैठक नौ बजे शुरू होती है।",
        "सर्दियों में झील जम जाती है, और बहुत से लोग उस पर स्केटिंग करने जाते हैं।",
    ],
    "Chinese": [
        "今天天气很好，所以我们要走路去市场买新鲜的面包。",
        "我姐姐在城里的一家医院工作，她晚上经常很晚才回家。",
        "您能告诉我最近的火车站在哪里吗？",
        "孩子们上周读了三本书，明天还想再去图书馆。",
        "我们必须在星期五之前完成这份报告，因为会议九点开始。",
        "冬天湖面会结冰，很多人去上面滑冰。",
    ],
    "Japanese": [
        "今日は天気がいいので、市場まで歩いて新鮮なパンを買いに行きます。",
        "姉は町の病院で働いていて、夜遅く帰宅することがよくあります。",
        "一番近い駅はどこか教えていただけますか？",
        "子どもたちは先週本を三冊読んで、明日また図書館に行きたがっています。",
        "会議は九時に始まるので、金曜日までにこの報告書を仕上げなければなりません。",
        "冬になると湖が凍り、多くの人がその上でスケートをします。",
    ],
}
