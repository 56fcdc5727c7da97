"""Patterns for calls.triage, kept apart from the engine so clinicians can review them as data.

Patterns run on normalised text (see triage.normalize): lowercase ASCII, no accents, no apostrophes ("cant",
"hes", "babys"), words separated by single spaces, "." and "," as their own tokens. Two shorthands:
  `~N `   a gap of up to N words (never crosses "." or ","), e.g. "chest ~3 pain" matches "chest really bad pain";
  `@NAME` a shared alternation from MACROS below.
A rule is (reason, pattern) or (reason, pattern, required_context): the third element must also occur somewhere in the
utterance (e.g. face swelling is an emergency only with an allergy in the picture; otherwise the urgent swelling rule
applies). Rules of a level are tried in order, emergency first; every rule is checked against the guards in triage.
"""

# ruff: noqa: E501 - patterns are data: a regex reads better unbroken than split to fit 120 columns
from __future__ import annotations

import re
from collections.abc import Sequence

from organizations.vocabulary import TriageLevel

MACROS = {
    "CANT": r"(?:cant|cannot|can not|couldnt|could not|unable to|not able to|isnt able to|cant seem to|can barely)",
    "BREATHE": r"(?:breathe|breath|breathing|breathin|brethe|breeth|breth|breathes)",
    "CHEST": r"(?:chest|chests|chess|chestt)",
    "POSS": r"(?:my|his|her|their|your|the|our|its|a)",
    "WHO": r"(?:he|she|hes|shes|he is|she is|they|theyre|i|im|i am|it|its|baby|babys|the baby)",
    "SEIZ": r"(?:s[ei]{1,2}z(?:ure|ures|ing|ed|e)|seasures?|seazures?|seisures?|siezures?|convuls\w*)",
    "PILLS": (
        r"(?:pills?|tablets?|meds|medications?|medicines?|xanax|tylenol|advil|ibuprofen|acetaminophen|aspirin|vitamins|"
        r"gummies|insulin|oxy\w*|percocet|vicodin|fentanyl|opioids?|benzos?|sleeping pills|ambien|edibles|morphine|"
        r"klonopin|valium|adderall|lithium|methadone|heroin|antidepressants?)"
    ),
    "AGENT": (
        r"(?:bleach|detergent|laundry pods?|tide pods?|pods|antifreeze|button batter(?:y|ies)|batter(?:y|ies)|magnets?|"
        r"rat poison|poison|pesticides?|insecticides?|weed killer|roundup|drain cleaner|cleaner|lye|gasoline|kerosene|"
        r"lighter fluid|lamp oil|windshield (?:wiper |washer )?fluid|washer fluid|wild mushrooms|mushrooms|iron pills|nicotine|vape juice|"
        r"e liquid|chemicals?|ammonia|paint thinner|alcohol|mouthwash|hand sanitizer|fertilizer|pills?|medicines?|meds|"
        r"vitamins|gummies|edibles)"
    ),
    "BODYPART": (
        r"(?:arm|arms|leg|legs|wrist|ankle|hip|toe|toes|finger|fingers|thumb|collarbone|rib|ribs|nose|foot|feet|hand|"
        r"elbow|knee|shoulder|jaw|bone|bones|back|neck|kneecap|shin|pelvis|femur|heel)"
    ),
    "ES_PILLS": r"(?:pastillas|pildoras|medicinas?|medicamentos?|vitaminas|tabletas|frasco|caja|insulina|calmantes)",
    "ES_AGENT": (
        r"(?:cloro|veneno|raticida|insecticida|pesticida|detergente|pilas?|bateria|gasolina|anticongelante|limpiador|"
        r"liquido (?:de|para) limpiar|liquido limpiador|pinol|fabuloso|suavizante|blanqueador|"
        r"vitaminas|pastillas|pildoras|medicinas?|medicamentos?|quimicos?|thinner|acido|sosa|alcohol)"
    ),
}


def gap(n: int) -> str:
    return f"(?:[a-z0-9]+ ){{0,{n}}}"


_GAP_RE = re.compile(r"~(\d+) ")
_MACRO_RE = re.compile(r"@([A-Z_]+)")


def expand(pattern: str) -> str:
    pattern = _MACRO_RE.sub(lambda m: MACROS[m.group(1)], pattern)
    return _GAP_RE.sub(lambda m: gap(int(m.group(1))), pattern)


# Context patterns for rules that need more than one clue.
ALLERGY_CONTEXT = (
    r"\b(?:allerg\w*|peanuts?|nuts?|shellfish|shrimp|crab|lobster|sting\w*|stung|bees?|wasps?|hornets?|epi ?pens?|"
    r"hives|ate|eating|eaten|antibiotics?|penicillin|amoxicillin|sulfa|reaction|anaphyla\w*|latex|gloves|"
    r"nuez|nueces|cacahuates?|mani|mariscos|camarones?|alergi\w*|picad\w*|pico|abejas?|avispas?|ronchas|comio|galletas)\b"
)
HEAD_RED_FLAGS = (
    r"\b(?:vomit\w*|throw\w* up|threw up|puk\w*|seeing double|double vision|confus\w*|doesnt know|dont know where|"
    r"pass\w* out|past out|blacked out|unconscious|knocked out|wont wake|sleepy|drowsy|seizure|blood thinners?|"
    r"thinners?|eliquis|warfarin|coumadin|xarelto|slurr\w*|clear fluid|not acting right|acting weird)\b"
)
ES_HEAD_RED_FLAGS = (
    r"\b(?:vomit\w*|no sabe donde|confundid\w*|desmay\w*|ve doble|inconscient\w*|no despierta|convuls\w*|"
    r"anticoagul\w*|somnolient\w*|perdio el conocimiento|no reconoce)\b"
)
PREGNANCY_CONTEXT = (
    r"\b(?:pregnant|pregnancy|\d+ weeks|weeks pregnant|expecting|trimester|embarazada|embarazo|semanas de embarazo|"
    r"\d+ semanas)\b"
)

# --- Emergency ----------------------------------------------------------------------------------------------------

EMERGENCY_EN = [
    # Heart: pain, pressure and the ways callers describe them, plus device shocks and failed nitro.
    (
        "chest_pain",
        r"@CHEST ~5 (?:pains?|hurts?|hurting|aches?|aching|pressure|tight|tightness|heavy|heaviness|"
        r"squeez\w*|crush\w*|burn\w*|tearing|ripping|killing|on fire|caving in|exploding)",
    ),
    (
        "chest_pain",
        r"(?:pains?|pressure|tight\w*|heav\w*|squeez\w*|crush\w*|burn\w*|tearing|ripping|weight|hurts?|"
        r"ache|aching) (?:in|on|across|around|through) @POSS (?:upper )?(?:belly and |stomach and )?@CHEST",
    ),
    (
        "chest_pain",
        r"(?:elephant|someone|somebody|weight|ton of bricks|truck|rock|boulder|anvil|house) ~3 "
        r"(?:on|sitting on|standing on|crushing|pressing on|pressing down on) ~2 @CHEST",
    ),
    ("chest_pain", r"(?:heart|hart|hard) attack"),
    ("chest_pain", r"(?:clutching|grabbing|holding|gripping|clutches|grabbed|clutched) ~2 @CHEST"),
    (
        "chest_pain",
        r"(?:pains?|pressure|tightness|heaviness|squeez\w*|crush\w*|burning|tearing|ripping|weight|"
        r"hurts?|aching|stabbing) ~5 @CHEST",
    ),
    (
        "chest_pain",
        r"(?:going|goes|spreading|spreads|shooting|shoots|radiating|radiates|moving) (?:down|into|up into|"
        r"up to|to) ~2 (?:left )?(?:arm|jaw)",
    ),
    (
        "chest_pain",
        r"(?:pain|hurts?|hurting|numb\w*|tingl\w*) ~3 (?:down|into|up (?:to|into)|radiat\w* (?:to|into|down)|"
        r"spread\w* (?:to|into|down)|shoot\w* (?:down|into|up)|going (?:down|into)) ~2 "
        r"(?:left )?(?:arm|jaw|shoulder blade|back)",
    ),
    ("chest_pain", r"(?:defibrillator|defib|icd|implanted device) ~4 (?:shock\w*|fired|went off|zapp\w*)"),
    ("chest_pain", r"(?:nitro|nitroglycerin) ~4 (?:not|isnt|didnt|doesnt|still|no) ~2 (?:help\w*|work\w*|pain|better)"),
    (
        "chest_pain",
        r"heart ~2 (?:racing|pounding|beating (?:so |really |very )?fast|fluttering) ~5 "
        r"(?:@CHEST|faint|dizzy|pass\w* out|short of breath|@CANT @BREATHE)",
    ),
    # Stroke: the FAST signs in plain words.
    ("stroke_signs", r"(?:stroke|stoke|strok|mini stroke|ministroke|tia)"),
    (
        "stroke_signs",
        r"(?:face|mouth|smile|lip|lips|eye|eyelid|cheek) ~3 (?:droop\w*|crooked|lopsided|sag\w*|uneven|"
        r"numb|fall\w* down|slid\w* down|twisted|wont move|doesnt move|not moving|went slack|slack|"
        r"pulled to one side|off to one side)",
    ),
    (
        "stroke_signs",
        r"(?:one|left|right) side ~4 (?:numb|weak|droop\w*|wont move|cant move|paralyz\w*|"
        r"went (?:weak|numb|dead|limp)|gave out|is dead)",
    ),
    ("stroke_signs", r"(?:slur\w*|garbled|gibberish|jumbled words|word salad)"),
    ("stroke_signs", r"@CANT (?:find|get out|form|say|get) ~2 words"),
    ("stroke_signs", r"(?:saying|using|says) ~2 (?:the )?(?:wrong|weird|strange) words"),
    ("stroke_signs", r"(?:words|speech) ~3 (?:mixed up|jumbled|garbled|coming out wrong|all wrong|not right|off)"),
    (
        "stroke_signs",
        r"(?:he|she|hes|shes|im|and|theyre|they|dad|mom|husband|wife) (?:is |are |suddenly )?"
        r"(?:not|isnt|stopped|arent) making (?:any )?sense",
    ),
    ("stroke_signs", r"talking (?:nonsense|gibberish|funny|weird|strange|crazy)"),
    ("stroke_signs", r"(?:suddenly|all of a sudden|out of nowhere|now) ~3 @CANT (?:talk|speak|walk|see)"),
    (
        "stroke_signs",
        r"@CANT (?:lift|move|raise|feel|use|hold up|grip with) ~2 (?:right |left )?"
        r"(?:arm|leg|hand|side|face)",
    ),
    (
        "stroke_signs",
        r"(?:arm|leg|hand|side|face) ~2 (?:went|gone|going|is|feels|felt|just went|has gone|got) ~1 "
        r"(?:weak|numb|dead|limp|heavy|floppy|paralyzed)",
    ),
    (
        "stroke_signs",
        r"(?:suddenly|sudden|all of a sudden) ~3 (?:weak|numb\w*|confus\w*|cant see|blind|double vision|"
        r"worst headache)",
    ),
    ("stroke_signs", r"(?:worst headache|thunderclap|explosive headache|exploding headache|headache like a thunder)"),
    ("stroke_signs", r"(?:seeing double|see double|double vision|went blind|gone blind|suddenly blind)"),
    ("stroke_signs", r"(?:lost|losing|lose|loss of) ~2 (?:vision|sight|eyesight)"),
    # Breathing.
    (
        "breathing",
        r"@CANT ~2 (?:@BREATHE|get ~2 air|catch ~2 breath|get ~1 breath)(?! through (?:my|his|her|the) nose)",
    ),
    (
        "breathing",
        r"(?:trouble|difficulty|hard time|struggling|struggle|labored|laboured|fighting|working hard) "
        r"(?:to |with |for )?~1 @BREATHE(?! through (?:my|his|her|the) nose)",
    ),
    ("breathing", r"(?:not|isnt|stopped|stop|quit|barely|hardly|no longer|aint) @BREATHE"),
    ("breathing", r"(?:dont think|not sure|dont know if|cant tell if|not sure if) ~2 (?:is |s )?@BREATHE"),
    ("breathing", r"(?:gasping|gasps|gasp for air|air hungry|choking|suffocat\w*)"),
    (
        "breathing",
        r"(?:lips|face|skin|fingers|fingertips|hes|shes|he is|she is|turning|turned|going|gone|went|"
        r"is turning) (?:are |is |all |really )?(?:blue|purple|grey|gray|bluish|dusky|ashen)",
    ),
    ("breathing", r"@CANT (?:finish|complete|say|get out) ~2 (?:a )?(?:full |whole )?sentences?"),
    ("breathing", r"(?:barely|hardly) (?:talk|speak)"),
    (
        "breathing",
        r"(?:inhaler|puffer|nebulizer|albuterol|rescue) ~4 (?:isnt|not|doesnt|didnt|wont|no|aint) ~1 "
        r"(?:help\w*|work\w*|do anything|doing anything)",
    ),
    ("breathing", r"(?:dont|cant|not|doesnt) see ~2 chest (?:move|moving|rise|rising|going up)"),
    ("breathing", r"chest (?:isnt|not|stopped) (?:moving|rising|going up)"),
    ("breathing", r"(?:pauses|pausing|stops|stopping|forgets) ~3 (?:@BREATHE|breaths)"),
    ("breathing", r"(?:very|really|so|severely|extremely|super) short of breath"),
    # Children in respiratory distress: fast breathing, ribs pulling in, grunting, flaring nostrils.
    ("breathing", r"@BREATHE ~2 (?:super |really |very |so )?(?:fast|hard|heavy and fast)(?! (?:after|when|from))"),
    (
        "breathing",
        r"(?:ribs|chest|belly|skin|neck) ~3 (?:sucking|sucks|pulling|pulls|caving) in|retractions|grunting|"
        r"nostrils ~2 flar\w*|head bobbing",
    ),
    # Choking and airway.
    ("choking", r"(?:chok\w*|chok)"),
    ("choking", r"stuck in ~1 (?:throat|windpipe|airway)"),
    ("choking", r"(?:grabbing|clutching|holding) ~1 throat"),
    # Seizures.
    ("seizure", r"@SEIZ"),
    ("seizure", r"(?:having|had) (?:a |another )?fit(?! (?:about|over|because|when))"),
    ("seizure", r"(?:went|gone|is|got|going) (?:all )?(?:rigid|stiff) ~5 (?:jerk\w*|shak\w*|twitch\w*)"),
    (
        "seizure",
        r"(?:jerking|shaking|twitching|convulsing) (?:all over|uncontrollably|everywhere|his whole body|"
        r"her whole body)",
    ),
    ("seizure", r"eyes ~1 (?:rolled|rolling) (?:back|up)"),
    # Unconscious or unresponsive.
    ("unconscious", r"(?:passed|past|blacked|blacking|passing|passes) out"),
    (
        "unconscious",
        r"(?:unconscious|unconcious|unresponsive|out cold|lifeless|keeled over|slumped|face down|"
        r"face first|fainted|fainting|collaps\w*|went limp|gone limp|is limp|hit the floor|"
        r"dropped to the floor|wont wake|not waking|wouldnt wake|hard to wake|cant stay awake)",
    ),
    (
        "unconscious",
        r"(?:got|was|been|is|were|just got) knocked out\b(?! (?:a |his |her |my |the |two )?"
        r"(?:front )?(?:tooth|teeth))",
    ),
    ("unconscious", r"(?:not|isnt|wont|stopped|no longer) (?:respond\w*|react\w*|wak\w* up|answering me|opening)"),
    ("unconscious", r"@CANT (?:wake|rouse|get) ~1 (?:him|her|them|it|the baby) (?:up|awake|to wake|to respond)"),
    ("unconscious", r"@CANT keep ~1 (?:him|her|them|the baby|myself) (?:awake|up)"),
    (
        "unconscious",
        r"found ~3 (?:him|her|them|dad|mom|father|mother|husband|wife|son|daughter|grandma|grandpa) ~2 "
        r"(?:on|lying on|face down on|in) the (?:floor|ground|bathroom floor)",
    ),
    (
        "unconscious",
        r"(?:shak\w*|yell\w*|call\w*|slapp\w*|pinch\w*|scream\w*) ~3 (?:him|her|them|name) ~4 "
        r"(?:nothing|no response|doesnt (?:respond|move|answer)|wont respond|not responding)",
    ),
    ("unconscious", r"(?:hes|shes|he is|she is|baby is|babys|they are|theyre|baby) (?:not|isnt) moving"),
    ("unconscious", r"(?:no|not|cant find|cant feel|dont feel) ~2 (?:pulse|heartbeat|heart beat)"),
    ("unconscious", r"(?:doing|started|giving|start|performing|do) cpr"),
    ("unconscious", r"(?:is|hes|shes|im|i am|think (?:he|she) is|think (?:hes|shes)|baby is) dying\b"),
    # Bleeding.
    (
        "bleeding",
        r"(?:(?:nose ?)?bleed\w*|blood) ~3 (?:wont|will not|doesnt|does not|not|cant|cannot|isnt|wouldnt) "
        r"(?:stop\w*|slow\w*)",
    ),
    ("bleeding", r"(?:cant|cannot|wont|unable to|couldnt) (?:stop|control) ~2 (?:the )?bleed\w*"),
    (
        "bleeding",
        r"(?<!gums )(?<!gum )(?:bleed\w*|blood) ~2 (?:everywhere|a lot|heavily|badly|like crazy|so much|"
        r"gushing|spurting|pouring|squirting|all over|through|profusely|like a faucet)",
    ),
    (
        "bleeding",
        r"(?:lot of|lots of|so much|tons of|pool of|puddle of|full of|soaked|soaking|gushing|spurting|"
        r"pouring|squirting|cups of|clots of) ~2 blood",
    ),
    ("bleeding", r"(?:gushing|spurting|squirting|pumping out|pouring out)"),
    ("bleeding", r"(?:coughing|cough\w*|throwing|threw|vomit\w*|puk\w*|spitting) (?:up )?~1 blood"),
    ("bleeding", r"(?:hemorrhag\w*|haemorrhag\w*|bleeding out)"),
    (
        "bleeding",
        r"soak\w* (?:through )?~2 (?:pads?|tampons?|maxi pads?)|(?:passing|large|big|huge) ~1 clots|"
        r"coffee grounds|(?:black|tarry) (?:tarry )?(?:stool|poop)",
    ),
    ("bleeding", r"(?:nose ?)?bleed\w*", r"\b(?:lightheaded|light headed|dizzy|faint\w*|pass\w* out|pale|clammy)\b"),
    ("bleeding", r"(?:cut|chopped|sliced|severed|cut clean|ripped) ~3 (?:off)\b"),
    ("bleeding", r"(?:amputat\w*|stabbed|stab wound|gunshot|got shot|been shot|was shot|impaled)"),
    ("bleeding", r"(?:bone|it) ~2 (?:sticking|poking|coming) (?:out|through)"),
    # Overdose and poisoning.
    ("overdose", r"(?:overdos\w*|over dos\w*|od ed|odd on)"),
    (
        "overdose",
        r"(?:took|taken|take|swallowed|ate|drank|downed|popped|got into|chugged|emptied) ~3 "
        r"(?:whole|entire|all) ~2 (?:bottle|box|pack\w*|weeks?|months?|supply|strip|prescription|jar|"
        r"pill box|pillbox|container|of (?:his|her|my|the) @PILLS|@PILLS)",
    ),
    (
        "overdose",
        r"(?:took|taken|swallowed|ate|drank|downed|popped|got into|chugged|had|taking) ~2 (?:a )?"
        r"(?:bunch|handful|fistful|lot|lots|ton|too many|too much|way too many|way too much|a lot|extra|double|"
        r"\d+|ten|twenty|thirty|fifty|several) ~3 @PILLS",
    ),
    ("overdose", r"(?:took|taken|swallowed|had) ~3 @PILLS ~4 (?:drinking|alcohol|booze|vodka|wine|beer)"),
    ("overdose", r"(?:found|next to|beside|with) ~5 empty ~3 (?:pill )?(?:bottles?|packets?|boxes|box|blister|@PILLS)"),
    (
        "poisoning",
        r"(?:ate|eaten|swallowed|drank|drunk|drinking|chewed|licked|got into|ingested|sucked on|bit into|"
        r"took a (?:sip|drink|swig) of|sprayed|splashed) ~6 @AGENT",
    ),
    (
        "poisoning",
        r"(?:pesticide|insecticide|organophosphate|carbon monoxide|gas leak|fumes|chemical|weed killer) ~8 "
        r"(?:drool\w*|twitch\w*|vomit\w*|dizzy|confus\w*|headache|pass\w* out|@CANT @BREATHE|sweat\w*|"
        r"sick|throwing up|collaps\w*)",
    ),
    ("poisoning", r"(?:carbon monoxide|co detector|co alarm) ~4 (?:going off|beeping|alarm|went off)"),
    ("poisoning", r"(?:poison\w*)(?! (?:control|ivy|oak|sumac))"),
    (
        "electrical_injury",
        r"(?:electrocut\w*|electric(?:al)? shock|struck by lightning|shocked by ~2 "
        r"(?:outlet|wire|cord|fence|socket)|(?:chewed|bit|bit into|touched|stuck \w+ in) ~3 "
        r"(?:extension |electric |electrical |power )?(?:cord|wire|outlet|socket))",
    ),
    # Self-harm (the pipeline gives 988 rather than 911).
    (
        "self_harm",
        r"(?:kill|killing|hurt|hurting|harm|harming|cut|cutting|end|shoot|hang) "
        r"(?:my ?self|him ?self|her ?self|themselves|themself)",
    ),
    ("self_harm", r"(?:slit|slits|slitting|cut|cuts|cutting) (?:my|his|her|their) wrists?"),
    (
        "self_harm",
        r"(?:suicid\w*|end (?:my|his|her) life|end it all|take (?:my|his|her) (?:own )?life|"
        r"better off dead|no reason to live|(?:tonights|tonight is|today is|todays) the (?:night|day))",
    ),
    (
        "self_harm",
        r"(?:dont|doesnt|do not|does not|no longer) want(?:s)? to (?:live|be alive|be here|wake up|go on|"
        r"exist)",
    ),
    ("self_harm", r"(?:want|wants|wanna|going|gonna|ready) to die\b"),
    (
        "self_harm",
        r"(?:say|saying|said|texted|texting|sent|wrote|writing|posted|left) ~3 goodbye ~3 "
        r"(?:for good|forever|everyone|to everyone|to my|letter|note|message)|goodbye (?:forever|for good)",
    ),
    ("self_harm", r"(?:wrote|written|writing|left) ~3 (?:goodbye|suicide|farewell) (?:notes?|letters?)"),
    ("self_harm", r"(?:saving up|saved up|stockpil\w*|hoarding|collecting) ~2 @PILLS"),
    (
        "self_harm",
        r"(?:has|got|holding|have) ~2 (?:a )?(?:razor|gun|knife|blade|rope) ~4 (?:want|wants|doesnt|dont|"
        r"going to|gonna|kill|die|hurt|end)",
    ),
    # Allergic reaction with airway involvement.
    (
        "allergic_reaction",
        r"(?:throat|throats|airway|windpipe) ~3 (?:clos\w*|tight\w*|swell\w*|swollen|narrow\w*|"
        r"squeez\w*)",
    ),
    (
        "allergic_reaction",
        r"(?:tongue|tongues|lips|lip|mouth) ~3 (?:swell\w*|swollen|puff\w* up|blow\w* up|blew up|"
        r"ballooning|huge|getting big)",
    ),
    (
        "allergic_reaction",
        r"(?:face|faces|eyes|eye) ~3 (?:swell\w*|swollen|puff\w* up|blow\w* up|blew up|ballooning)",
        ALLERGY_CONTEXT,
    ),
    ("allergic_reaction", r"(?:anaphyla\w*|anaphalactic|anafilact\w*)"),
    (
        "allergic_reaction",
        r"(?:used|gave|give|giving|use|had to use|injected|jabbed|stuck) ~2 (?:him |her )?"
        r"(?:with )?(?:an |the |his |her |my )?epi ?pens?",
    ),
    ("allergic_reaction", r"hives ~5 (?:@BREATHE|throat|wheez\w*|swell\w*|tongue|lips)"),
    ("allergic_reaction", r"(?:severe|bad|serious|major) allergic reaction"),
    (
        "allergic_reaction",
        r"(?:wheez\w*|swollen all over|all swollen|swelling all over|@CANT @BREATHE)",
        ALLERGY_CONTEXT,
    ),
    # Head injury with red flags, and altered mental state.
    (
        "head_injury",
        r"(?:hit|hits|bumped|banged|smacked|struck|whacked|cracked|fell on|landed on) ~2 "
        r"(?:head|skull)",
        HEAD_RED_FLAGS,
    ),
    (
        "altered_mental_state",
        r"(?:doesnt|dont|didnt) (?:know|recogni[sz]e) ~2 (?:where (?:he|she|they|i) (?:is|am|are)|"
        r"who|me|us|what day|his own|her own)",
    ),
    ("altered_mental_state", r"(?:very|really|suddenly|so) (?:confused|disoriented) ~4 (?:and|cant|not)"),
    # Pregnancy danger signs.
    ("pregnancy", r"(?:ectopic|tubal pregnancy)"),
    (
        "pregnancy",
        r"(?:bleed\w*|blood|gush\w*|clots?) ~3 (?:heav\w*|a lot|soak\w*|clots|everywhere)",
        PREGNANCY_CONTEXT,
    ),
    (
        "pregnancy",
        r"(?:sudden|severe|terrible|horrible|unbearable|constant|really bad|awful) ~2 "
        r"(?:belly |stomach |abdominal |pelvic |side )?(?:pain|cramp\w*)",
        PREGNANCY_CONTEXT,
    ),
    ("pregnancy", r"(?:hard as a rock|rock hard|wont let up|hard as rock)", PREGNANCY_CONTEXT),
    (
        "pregnancy",
        r"(?:seeing spots|spots in ~1 vision|flashing lights|(?:severe|terrible|bad|awful|horrible|pounding|"
        r"worst) headache|blurr\w* vision|vision ~2 blurr\w*|soak\w*)",
        PREGNANCY_CONTEXT,
    ),
    ("pregnancy", r"(?:baby|babys) ~2 (?:not|isnt|stopped|hasnt|hasnt been) (?:mov\w*|kick\w*)", PREGNANCY_CONTEXT),
    (
        "pregnancy",
        r"(?:cant|dont|havent|cannot|hasnt|didnt|not) (?:feel|felt|feeling) ~2 (?:the |my )?baby ~1 "
        r"(?:mov\w*|kick\w*)",
    ),
    # Other red flags callers describe.
    (
        "abdominal",
        r"(?:belly|stomach|abdomen|tummy|gut) ~4 (?:hard as a rock|rock hard|tight as a drum|like a drum|"
        r"distended|rigid)",
    ),
    ("abdominal", r"(?:trying|tries|tried|keeps trying|try) to (?:throw up|vomit|puke) ~3 nothing"),
    ("abdominal", r"(?:vomit\w*|throw\w* up|threw up|puk\w*) ~4 (?:poop|feces)"),
    (
        "burn",
        r"(?:face|airway|mouth|throat|eyebrows|nose hairs|whole body|whole arm|entire arm|chest) ~4 "
        r"(?:burn\w*|singed|charred)",
    ),
    ("burn", r"(?:burn\w*|scald\w*) ~4 (?:face|airway|mouth|throat|whole body|whole arm|entire)"),
    ("burn", r"voice ~3 (?:hoarse|raspy)", r"\b(?:fire|smoke|burn\w*|flames?|allerg\w*|ate|swell\w*)\b"),
    (
        "diabetic_emergency",
        r"(?:sugar|sugars|glucose|bg|reading) ~3 (?:is |reads |says |at |of |over |was )?"
        r"(?:[5-9]\d\d|\d\d\d\d|hi|too high to read|high to read|too low to read|[1-3]\d)\b",
    ),
    ("diabetic_emergency", r"(?:dka|ketoacidosis|fruity breath)"),
    (
        "trauma",
        r"(?:hit by a (?:car|truck|bus)|car (?:accident|crash|wreck)|run over|ran over|fell off ~3 "
        r"(?:roof|ladder|balcony|building|horse|cliff)|drown\w*|pulled (?:him |her |them )?out of (?:the )?"
        r"(?:pool|water|lake|river|ocean|bathtub|tub))",
    ),
    (
        "emergency_stated",
        r"(?:call|calling|called|dial|dialed|dialing) ~2 (?:911|nine one one|an ambulance|"
        r"ambulance|paramedics|emts?)",
    ),
    ("emergency_stated", r"(?:ambulance|paramedics)(?! (?:bill|ride bill|company|charge|invoice))"),
    (
        "emergency_stated",
        r"(?:this is|its|it is|we have|i have|theres|having|got|its an) an? (?:real |medical |"
        r"actual |true )?emergency",
    ),
]

EMERGENCY_ES = [
    ("chest_pain", r"dolor ~2 (?:de |en |del )?(?:el |mi |su )?pecho"),
    ("chest_pain", r"(?:me|le|te|nos|les) (?:duele|dolia|arde|aprieta|oprime|quema|punza) ~2 (?:el )?pecho"),
    ("chest_pain", r"(?:aplast\w*|apret\w*|oprim\w*|estruj\w*|pesa|pesaba|sentad[oa]) ~4 (?:el |mi |su )?pecho"),
    ("chest_pain", r"pecho ~3 (?:duele|apretado|oprimido|presion|ardor|arde|pesado|dolor|quema|aprieta|oprime)"),
    ("chest_pain", r"(?:opresion|presion|ardor|peso|punzada|apreton|dolor fuerte) ~2 (?:en )?(?:el )?pecho"),
    ("chest_pain", r"(?:infarto|ataque (?:al|del) corazon|paro cardiaco)"),
    ("chest_pain", r"(?:duele|dolor|adormecid\w*) ~3 (?:brazo izquierdo|quijada|mandibula)"),
    ("stroke_signs", r"(?:derrame|embolia|ictus|infarto cerebral|trombosis)"),
    (
        "stroke_signs",
        r"(?:cara|boca|sonrisa|labio|ojo|parpado) ~3 (?:chueca|chueco|torcida|torcido|caida|caido|"
        r"de lado|paralizad\w*|dormid\w*|adormecid\w*|colgad\w*|no se mueve)",
    ),
    (
        "stroke_signs",
        r"(?:se le|se me|se te) (?:traba|trabo|enreda|enredo|torcio|cayo|cae|durmio|duerme) ~2 "
        r"(?:la |el )?(?:lengua|boca|cara|brazo|pierna|lado)",
    ),
    ("stroke_signs", r"(?:arrastra|arrastrando) ~2 (?:las )?palabras"),
    (
        "stroke_signs",
        r"no (?:puede|puedo|podia) (?:hablar|levantar|mover|sentir|alzar) ~3 (?:el |la |su |mi )?"
        r"(?:brazo|pierna|lado|mano|cara)",
    ),
    (
        "stroke_signs",
        r"(?:no se le entiende|no le entiendo|no tiene sentido lo que dice|no sabe lo que dice|"
        r"dice cosas sin sentido|habla (?:raro|chistoso|incoherente|mocho|enredado)|"
        r"no (?:encuentra|le salen) las palabras)",
    ),
    (
        "stroke_signs",
        r"(?:brazo|pierna|lado|mano) ~3 (?:dormid[oa]|adormecid[oa]|debil|sin fuerza|paralizad[oa]|"
        r"no (?:le )?responde|muert[oa])",
    ),
    ("stroke_signs", r"de (?:repente|pronto) ~3 (?:no (?:puede|ve|habla)|se le|confundid\w*|debil)"),
    (
        "stroke_signs",
        r"(?:peor dolor de cabeza|vision doble|veo doble|ve doble|no (?:veo|ve) nada|(?:se quedo|me quede) "
        r"cieg[oa]|perdi la vista|perdio la vista)",
    ),
    ("breathing", r"no (?:puede|puedo|podia|podemos|pueden) respirar"),
    (
        "breathing",
        r"(?:no respira|(?:dejo|deja) de respirar|casi no (?:puede )?respira\w*|respira (?:muy )?(?:mal|raro|"
        r"poquito|feo))",
    ),
    ("breathing", r"(?:le|me|nos|les) (?:falta|faltaba) (?:el )?aire"),
    ("breathing", r"no (?:le|me) entra (?:el )?aire"),
    ("breathing", r"(?:se (?:esta )?ahoga\w*|ahogando|me ahogo|se asfixia|asfixi\w*)"),
    ("breathing", r"(?:dificultad|problemas|trabajo) (?:para|al) respirar"),
    (
        "breathing",
        r"pausas ~3 (?:respirar|respiracion)|se le olvida respirar|(?:para|paraba) de respirar|"
        r"respira\w* ~2 (?:muy )?(?:rapido|agitad\w*)|se le hunden ~2 costillas|(?:le )?aletea la nariz|"
        r"(?:quejid\w*|pujando) al respirar",
    ),
    ("breathing", r"(?:labios|cara|unas|piel|boca|dedos) ~2 (?:morad\w*|azul\w*|gris\w*)"),
    ("breathing", r"se (?:esta )?(?:poniendo|puso|pone) (?:morad\w*|azul\w*|gris\w*)"),
    ("choking", r"(?:se|me|te) (?:atoro|atora|atraganto|atraganta|esta atorando|esta atragantando|atoraron)"),
    ("choking", r"(?:atorad[oa]|atragantad[oa]|algo atorado)"),
    ("seizure", r"(?:convuls\w*|epileptico|crisis convulsiva)"),
    (
        "seizure",
        r"(?:le|me) (?:dio|esta dando|da|dieron) (?:un |otro )?ataque(?! de (?:panico|ansiedad|nervios|risa|"
        r"tos|asma))",
    ),
    ("seizure", r"(?:esta|se puso|se quedo) (?:tieso|tiesa|rigid\w*) ~4 (?:tembl\w*|sacud\w*|brinc\w*)"),
    ("seizure", r"(?:sacudiendose|temblando todo|se sacude todo|ojos en blanco|ojos volteados|ojos para atras)"),
    ("unconscious", r"(?:desmay\w*|desvanec\w*|inconscient\w*|perdio el (?:conocimiento|sentido)|se privo|privad[oa])"),
    ("unconscious", r"no (?:responde|reacciona|despierta|se despierta|abre los ojos|se mueve)"),
    ("unconscious", r"no (?:lo|la|le) (?:puedo|podemos|puede) despertar"),
    (
        "unconscious",
        r"(?:tirad[oa]|caid[oa]) en el (?:piso|suelo|bano)|no (?:me |nos )?(?:contesta|responde|habla) ~3 "
        r"(?:nada|aunque|cuando|y no|le hablo|la muevo|lo muevo)",
    ),
    ("unconscious", r"(?:no tiene|sin|no le encuentro) (?:pulso|latido)"),
    ("unconscious", r"(?:le estoy dando|dandole|hacerle|haciendole) (?:rcp|reanimacion|respiracion)"),
    ("unconscious", r"(?:se (?:esta|nos esta|me esta) muriendo|me estoy muriendo|se va a morir|se nos va)"),
    (
        "bleeding",
        r"(?:sangra|sangrando|sangre|sangrado|sangro) ~3 (?:mucho|muchisimo|bastante|sin parar|a chorros|"
        r"no para|no se detiene|no se para|no se le para|por todos lados)",
    ),
    ("bleeding", r"no (?:le |se le |me |se me )?(?:para|deja|paraba|dejaba) de sangrar"),
    ("bleeding", r"(?:chorro|charco|mucha|un monton|bastante|litros) ~2 (?:de )?sangre"),
    ("bleeding", r"(?:hemorragia|desangr\w*)"),
    ("bleeding", r"(?:vomit\w*|tose|tosiendo|escupe|escupiendo|arroja|arrojando) ~2 sangre"),
    ("bleeding", r"(?:apunal\w*|acuchill\w*|balazo|disparo|le dispararon|me dispararon)"),
    ("overdose", r"(?:sobredosis|sobre dosis)"),
    (
        "overdose",
        r"(?:tomo|trago|tome|trague|comio) ~2 (?:un |una |el |la )?(?:frasco|caja|bote|paquete) "
        r"(?:enter[oa]|complet[oa])",
    ),
    (
        "overdose",
        r"(?:se )?(?:tomo|trago|comio|bebio|tome|trague) ~3 (?:todas|todo el|todo|el frasco|la caja|un puno|"
        r"puno|un punado|punado|muchas|un monton|demasiad\w*|varias|un bote|media caja) ~3 (?:de )?"
        r"(?:las |sus |mis )?@ES_PILLS",
    ),
    ("poisoning", r"(?:se )?(?:tomo|trago|comio|bebio|tome|trague|chupo|mordio|tragado|comido) ~4 @ES_AGENT"),
    ("poisoning", r"(?:envenen\w*|intoxic\w*)"),
    (
        "electrical_injury",
        r"(?:electrocut\w*|descarga electrica|le dio (?:la )?corriente|le dio toques|choque electrico|"
        r"(?:mordio|chupo|toco) ~2 (?:un |el )?(?:cable|enchufe|contacto))",
    ),
    (
        "self_harm",
        r"(?:matarme|suicid\w*|quitarme la vida|quitarse la vida|me voy a matar|se va a matar|"
        r"me quiero matar|se quiere matar|hacerme dano|hacerse dano|cortarme|lastimarme|despedirme de)",
    ),
    ("self_harm", r"(?:quiero|quiere) (?:morir|morirme|morirse|desaparecer)"),
    ("self_harm", r"(?:no|ya no) (?:quiero|quiere) (?:vivir|seguir viviendo|estar aqui|despertar|seguir)"),
    ("self_harm", r"(?:no|ya no) (?:veo|le veo|hay|tengo) ~1 salida"),
    ("self_harm", r"(?:cartas?|notas?) ~4 (?:despedida|mis hijos|a mi familia|sus hijos)"),
    ("self_harm", r"(?:cortar|corto|cortarse|cortarme|corte|corta) ~2 (?:las |sus |mis )?venas"),
    ("self_harm", r"(?:mejor muert[oa]|lo voy a hacer (?:hoy|esta noche)|no vale la pena vivir)"),
    (
        "allergic_reaction",
        r"(?:se le|se me|se) (?:esta )?(?:cerrando|cierra|cerro|hinch\w*) ~2 (?:la |el |los )?"
        r"(?:garganta|lengua|labios|boca)",
    ),
    ("allergic_reaction", r"garganta ~3 (?:cerrad\w*|cerrando|hinchad\w*|apretad\w*|se cierra)"),
    ("allergic_reaction", r"(?:lengua|labios|boca) ~2 hinchad\w*"),
    ("allergic_reaction", r"(?:anafila\w*|choque anafilactico|shock anafilactico)"),
    ("allergic_reaction", r"(?:cara|ojos) ~2 (?:hinchad\w*|se (?:le )?(?:esta )?hinch\w*)", ALLERGY_CONTEXT),
    ("allergic_reaction", r"(?:reaccion alergica (?:fuerte|grave|severa))"),
    (
        "head_injury",
        r"(?:golpe\w*|pego|se pego|se golpeo|cayo|pegaron) ~4 (?:la |su |en la )?cabeza",
        ES_HEAD_RED_FLAGS,
    ),
    (
        "altered_mental_state",
        r"(?:no sabe (?:donde esta|quien es|que dia)|no (?:me )?reconoce|esta (?:muy )?"
        r"(?:confundid\w*|desorientad\w*))",
    ),
    ("pregnancy", r"(?:embarazo (?:fuera de la matriz|ectopico|en las trompas)|ectopico)"),
    ("pregnancy", r"(?:sangr\w*|sangre) ~3 (?:mucho|chorro|coagulos|cogulos|a chorros)", PREGNANCY_CONTEXT),
    ("pregnancy", r"dolor ~3 (?:horrible|fuerte|insoportable|terrible|muy fuerte|espantoso)", PREGNANCY_CONTEXT),
    ("pregnancy", r"(?:bebe|bebito) ~2 no se (?:mueve|ha movido)|no (?:siento|sentimos) (?:al|a mi|mover al) bebe"),
    (
        "abdominal",
        r"(?:panza|barriga|estomago|vientre|abdomen|panza) ~3 (?:dur[oa] como (?:una )?piedra|"
        r"muy dur[oa]|rigid\w*|como tambor)",
    ),
    (
        "burn",
        r"(?:quemad\w*|quemo|se quemo|quemaduras) ~3 (?:la cara|la garganta|la boca|todo el cuerpo|todo el brazo)",
    ),
    ("diabetic_emergency", r"(?:azucar|glucosa) ~3 (?:[5-9]\d\d|\d\d\d\d|hi|[1-3]\d)\b"),
    (
        "trauma",
        r"(?:lo|la|me) (?:atropell\w*|arroll\w*)|accidente de (?:carro|coche|auto|moto)|se (?:esta )?"
        r"ahog\w* en la (?:alberca|piscina)",
    ),
    (
        "emergency_stated",
        r"(?:llamar|llame|llamo|llamen|llamamos|marque|marcar) ~2 (?:al )?(?:911|nueve uno uno|"
        r"ambulancia)",
    ),
    ("emergency_stated", r"(?:ambulancia|paramedicos)"),
    ("emergency_stated", r"(?:es|tengo|tenemos|hay) una emergencia"),
]

# --- Urgent -------------------------------------------------------------------------------------------------------

URGENT_EN = [
    ("fever", r"(?:fever\w*|feverish|burning up|high temp\w*|running a temp\w*)(?! blister)"),
    ("fever", r"(?:temp|temperature) ~2 (?:of |is |was |at |reads |says )?(?:10[0-9]|39|40|41)"),
    (
        "fever",
        r"(?:hot|warm|like|reading|reads|thermometer says) ~2 (?:10[1-6]|39|40)\b"
        r"(?! (?:pounds|lbs|dollars|bucks|minutes|people|miles|degrees outside))",
    ),
    ("infection", r"(?:red|redness|streak\w*|rash) ~3 (?:spread\w*|streak\w*|going up|getting bigger|growing)"),
    (
        "infection",
        r"(?:red streaks?|oozing|ooze|pus|puss|drainage|draining|discharge|weeping|foul smell\w*|"
        r"smells (?:bad|funny|rotten)|infected|infection|abscess\w*|cellulitis|boil)",
    ),
    ("infection", r"(?:hot|warm) and (?:swollen|red)|(?:swollen|red) and (?:hot|warm)|red hot"),
    (
        "post_procedure",
        r"(?:incision|stitches|sutures|staples|wound|socket|surgical site|surgery site|port|catheter) ~4 "
        r"(?:red|swoll\w*|swell\w*|open\w*|came apart|split|bleed\w*|ooz\w*|pus|drain\w*|hot|warm|"
        r"infect\w*|hurts?|pain\w*|smell\w*|leak\w*)",
    ),
    (
        "post_procedure",
        r"(?:colonoscopy|surgery|procedure|operation|biopsy|endoscopy|c section|extraction|"
        r"tonsils out|tooth pulled|root canal|removed|taken out|teeth out|tooth out|gallbladder out|appendix out|"
        r"vasectomy|circumcision|implant) ~8 "
        r"(?:pain|bleed\w*|fever|swell\w*|swollen|vomit\w*|red|pus|ooz\w*)",
    ),
    (
        "severe_pain",
        r"@CANT ~3 (?:get|keep|control|manage) ~2 (?:the |his |her |my )?pain ~2 (?:under control|managed|"
        r"down)?",
    ),
    (
        "severe_pain",
        r"pain ~5 (?:unbearable|out of control|not controlled|isnt (?:getting )?better|getting worse|"
        r"worse and worse|through the roof|10 out of 10|ten out of ten|excruciating)",
    ),
    (
        "severe_pain",
        r"(?:severe|excruciating|unbearable|terrible|horrible|awful|worst|really bad|intense|extreme|"
        r"crazy|sharp|stabbing) (?:\w+ )?(?:pain|ache|headache|cramps?)",
    ),
    (
        "severe_pain",
        r"(?:migraine|headache|pain|toothache) ~6 (?:wont go away|not going away|isnt going away|"
        r"worst (?:ive|i have|ive ever|i ever|one)|wont stop|nothing helps|isnt helping)",
    ),
    ("severe_pain", r"(?:in (?:so much|a lot of|agony)|screaming in pain|crying in pain|doubled over)"),
    (
        "swelling",
        r"(?:swollen|swelling|swelled|swell up|swells|swole|puffed up|puffy|(?:starting|started|begin\w*|"
        r"going) to swell)",
    ),
    (
        "fracture",
        r"(?:broke|broken|break|fractur\w*|dislocat\w*|cracked|snapped|busted) ~2 "
        r"(?:my |his |her |their |the |a )?(?:\w+ )?@BODYPART",
    ),
    ("fracture", r"(?:fracture\w*|dislocated|broken bone)"),
    (
        "fracture",
        r"(?:is|its|looks|all|now) crooked|(?:pointing|bent|facing|sticking) (?:sideways|the wrong way|backwards|out)|looks (?:deformed|"
        r"crooked)|(?:finger|toe|arm|leg|wrist|nose|thumb) ~3 (?:crooked|deformed|bent)",
    ),
    ("fracture", r"@CANT (?:put (?:any )?weight|bear weight|walk on|stand on|get up|stand up)"),
    ("fall", r"(?:fell|fall|slipped|tripped|fallen) ~6 (?:@CANT (?:get up|stand|walk|move)|hip)"),
    ("urinary", r"@CANT (?:pee|urinate|void|go pee)"),
    ("urinary", r"(?:trying|tried|try) to (?:pee|urinate) ~4 (?:nothing|drips?|drops?|little)"),
    ("urinary", r"(?:only|just) ~2 (?:drips?|drops?|dribbl\w*) ~3 (?:come|coming)"),
    ("urinary", r"(?:burn\w*|sting\w*|hurts?|pain\w*) ~4 (?:pee|pees|urinat\w*|potty|peeing)"),
    ("urinary", r"(?:blood in ~2 (?:urine|pee)|kidney stones?|peeing blood|bloody urine)"),
    ("eye", r"(?:hit|poked|scratched|struck|splash\w*|sprayed|got|something) ~4 (?:in|into) ~2 eyes?"),
    ("eye", r"(?:scratched|poked|hurt|injured|cut|burned|burnt|scraped) ~2 (?:my|his|her|their|the|an|one) eyes?"),
    ("eye", r"(?:chemical|bleach|cleaner|acid|glue|chlorine) ~4 eyes?|eyes? ~4 (?:blurr\w*|swollen shut|bleed\w*)"),
    ("eye", r"(?:blurry|blurred|fuzzy) ~1 (?:vision)?|(?:things|everything) look ~1 (?:blurry|fuzzy)"),
    ("dvt", r"(?:calf|leg) ~3 (?:swollen|tender|red|warm|hot)"),
    (
        "bite",
        r"(?:bit|bitten|bite|scratched|scratch|stung) ~3 (?:by|from)? ~2 (?:a |the )?(?:dog|cat|raccoon|bat|snake|"
        r"spider|rat|squirrel|fox|monkey|animal|stray|coyote|skunk|tick|horse|possum|opossum|scorpion)",
    ),
    (
        "bite",
        r"(?:dog|cat|raccoon|bat|snake|spider|rat|squirrel|fox|animal|stray|coyote|skunk|horse|possum) ~2 "
        r"(?:bit|scratched|bite|attacked)",
    ),
    (
        "bite",
        r"(?:found|was|saw|there was|theres|woke up with) (?:a )?bats? ~3 (?:in|inside)|bats? ~3 "
        r"(?:touched|scratched|landed on|flew into)",
    ),
    ("bite", r"(?:tick ~3 (?:bite|in|on|embedded|attached|stuck)|broke the skin)"),
    ("med_reaction", r"(?:hives|broke out|breaking out|(?:allergic|bad) reaction|reaction to|reacting to)"),
    ("med_reaction", r"(?:gums bleed|bleeding gums|gums are bleeding|bruis\w* (?:everywhere|all over|showing up))"),
    ("asthma", r"asthma ~4 (?:worse|bad|flar\w*|acting up|attack)"),
    ("asthma", r"(?:inhaler|puffer|albuterol|nebulizer|neb) ~4 every ~2 (?:hour|hours|\d+|two|three|four)"),
    ("asthma", r"(?:wheez\w*|short(?:ness)? of breath|winded|out of breath|@CHEST ~2 congest\w* and ~2 @BREATHE)"),
    (
        "med_gap",
        r"(?:ran out|run out|running out|out of|without|cant get|couldnt get|didnt get|missed) ~4 "
        r"(?:insulin|anti ?rejection|transplant|seizure|epilepsy|keppra|blood thinner|thinners|warfarin|"
        r"eliquis|inhaler|prednisone|steroids?|heart|nitro|blood pressure|bp|antipsychotic|lithium|methadone|suboxone|"
        r"buprenorphine|hiv|antiretroviral|immunosuppress\w*|tacrolimus)(?: (?:meds|medications?|"
        r"medicines?|pills|prescription|drugs))?",
    ),
    ("med_gap", r"pharmacy ~4 (?:cant|wont|couldnt|didnt) ~2 fill"),
    (
        "glucose",
        r"(?:sugar|sugars|glucose|blood sugar|a1c reading) ~4 (?:drop\w*|low|lows|crash\w*|high|highs|spik\w*|"
        r"in the \d+s|\d+s|over \d+|under \d+|keeps going)",
    ),
    ("dehydration", r"(?:barely|hardly|hasnt|not|no|only) ~2 (?:peed|peeing|wet|wet diapers?|wet diaper|urinat\w*)"),
    ("dehydration", r"@CANT keep ~2 (?:anything|food|fluids|water|liquids|it|nothing) down"),
    ("dehydration", r"(?:vomit\w*|throw\w* up|threw up|puk\w*|diarrh\w*|dehydrat\w*)"),
    ("dental", r"(?:knocked|knocked out|fell out) ~3 (?:tooth|teeth)|(?:tooth|teeth) ~2 knocked out"),
    (
        "pregnancy",
        r"(?:bleed\w*|blood|spotting|vomit\w*|throw\w* up|cramp\w*|fluid|leak\w*|contractions|"
        r"water broke|pain)",
        PREGNANCY_CONTEXT,
    ),
    ("pregnancy", r"(?:in labor|going into labor|labor pains|contractions)"),
    (
        "mental_health",
        r"(?:panic attack|anxiety attack|hearing voices|seeing things|hallucinat\w*|psychotic|manic|"
        r"havent slept in days|breakdown)",
    ),
    (
        "confusion",
        r"(?:is|hes|shes|seems|seem|acting|more|very|really|getting|got|became|been|suddenly) "
        r"(?:\w+ )?(?:confus\w*|disoriented)(?! (?:about|by|with|on))",
    ),
    ("dizziness", r"(?:dizzy|dizziness|lightheaded|light headed|faint|vertigo|room is spinning|woozy)"),
    ("palpitations", r"(?:palpitations|hearts? ~2 (?:racing|pounding|skipping|fluttering|flutter\w*|irregular)|afib)"),
    ("bleeding", r"(?:bleed\w*|blood in ~2 (?:stool|poop|vomit|diaper|mucus)|bloody (?:stool|poop|diarrhea|nose))"),
    ("laceration", r"(?:cut ~3 (?:deep|to the bone|wont close|gaping)|needs? stitches|gash|laceration|deep cut)"),
    (
        "head_injury",
        r"(?:hit|hits|bumped|banged|smacked|struck|whacked|cracked|fell on|landed on) ~2 (?:head|skull)|"
        r"concussion",
    ),
    ("burn", r"(?:burn\w*|scald\w*|blister\w*)(?! when)"),
    ("foreign_body", r"(?:swallowed|ate|stuck) ~3 (?:a )?(?:coin|penny|marble|lego|toy|bone|bead|earring|screw|nail)"),
    (
        "infant",
        r"(?:baby|newborn|infant|\d+ (?:month|week|day) old) ~6 (?:wont|isnt|not|stopped) "
        r"(?:eat\w*|feed\w*|nurs\w*|drink\w*)|jaundice|(?:baby|newborn|infant) ~5 yellow",
    ),
    (
        "pet_urgent",
        r"(?:limping|limps|limped|wont eat|not eating|stopped eating|hasnt eaten|havent eaten|lethargic|"
        r"wont drink|not acting right|acting (?:weird|strange|funny))",
    ),
    ("urgent_stated", r"(?:its|it is|this is|very|really|kind of|pretty|quite|its kind of) urgent"),
    ("rash_fever", r"rash ~4 (?:all over|spreading|fever|blisters|purple)"),
]

URGENT_ES = [
    ("fever", r"(?:fiebre|calentura|temperatura alta)"),
    ("fever", r"temperatura ~2 (?:de )?(?:39|40|41|10[0-9])"),
    ("swelling", r"(?:hinchad\w*|hinchazon|inflamad\w*|se (?:le |me )?hinch\w*|hinch[oa]|hinchado|inchad\w*)"),
    (
        "fracture",
        r"(?:quebr\w*|fractur\w*|zafad\w*|dislocad\w*|se (?:le |me )?rompio (?:el|la) (?:brazo|pierna|"
        r"muneca|tobillo|cadera|dedo|hueso|pie|mano|clavicula|costilla|nariz))",
    ),
    (
        "fracture",
        r"no (?:se puede|me puedo|puede|puedo) (?:parar|levantar|caminar|apoyar|pararse|pararme|"
        r"levantarse|levantarme|mover la pierna)",
    ),
    ("infection", r"(?:pus|supura\w*|infectad\w*|infeccion|absceso|bolita de pus)"),
    (
        "infection",
        r"(?:roj[oa]|rojez|enrojecid\w*|rojo) ~3 (?:se (?:esta )?(?:extendiendo|extiende|agrandando)|"
        r"calient\w*|hinchad\w*)",
    ),
    (
        "dehydration",
        r"(?:vomit\w*|no (?:paro|para|dejo|deja) de vomitar|no (?:retengo|retiene) nada|diarrea|"
        r"deshidratad\w*|casi no (?:moja|orina|hace pipi)|no (?:moja|ha mojado) (?:el )?panal)",
    ),
    ("eye", r"(?:ojo|ojos) ~4 (?:cloro|quimico|golpe|rojo|arde|ardor|borros\w*|no ve|hinchad\w*|sangr\w*)"),
    ("eye", r"(?:cloro|quimico|algo|jabon|acido|arena|vidrio) ~3 en (?:el|los|mi|su) ojos?"),
    ("eye", r"(?:golpe|pego|pegaron|pelotazo) ~3 (?:el |en el )?ojo|vista borrosa|veo borroso|ve borroso"),
    (
        "bite",
        r"(?:mordi\w*|mordedura|rasguno|aranazo|arano|me pico|lo pico|la pico|picadura de (?:alacran|arana|"
        r"vibora|escorpion))",
    ),
    (
        "severe_pain",
        r"dolor ~2 (?:muy )?(?:fuerte|horrible|insoportable|terrible|intenso|espantoso)|"
        r"(?:mucho|muchisimo) dolor|no aguanto el dolor|no se me quita el dolor",
    ),
    (
        "urinary",
        r"(?:ardor|arde|duele|dolor) ~3 (?:al orinar|al hacer pipi|cuando orino|cuando hace pipi|para orinar)|"
        r"no (?:puedo|puede) orinar|sangre en (?:la )?orina|piedras? en (?:el|los) rin\w*|calculos?",
    ),
    (
        "med_reaction",
        r"(?:ronchas|salpullido|reaccion (?:a|al|alergica)|alergia a (?:la|el) (?:medicina|medicamento|"
        r"antibiotico))",
    ),
    (
        "asthma",
        r"asma ~4 (?:peor|empeor\w*|ataque|crisis)|(?:inhalador|bomba|bombita|nebuliz\w*) ~3 cada|silbido|"
        r"sibilan\w*|(?:me|le) cuesta respirar|falta de aire",
    ),
    (
        "med_gap",
        r"(?:se me acabo|se le acabo|se me acabaron|se le acabaron|no tengo|me quede sin|se quedo sin|"
        r"no me surten|no me quieren dar) ~3 (?:la |las |mi |mis |el |su |sus )?(?:insulina|anticoagulante|"
        r"inhalador|anticonvulsiv\w*|antirechazo|medicina para el corazon)",
    ),
    ("glucose", r"azucar ~4 (?:baja|bajo|alta|subio|bajo a|\d+)"),
    (
        "confusion",
        r"(?:confundid[oa]|desorientad[oa]) ~2 (?:de lo normal|que de costumbre|hoy|desde)|"
        r"(?:esta|anda|se ve|muy|mas) (?:confundid[oa]|desorientad[oa])",
    ),
    ("dizziness", r"(?:mareo|mareos|mareado|mareada|me mareo|me marea|me maree|se mareo|vertigo)"),
    (
        "post_procedure",
        r"(?:herida|puntadas|puntos|cicatriz|operacion|cirugia|extraccion) ~4 (?:roj\w*|hinch\w*|pus|"
        r"abri\w*|sangr\w*|calient\w*|infect\w*|dolor|duele|supura\w*)",
    ),
    ("bleeding", r"(?:sangr\w*|sangre en (?:el|la|las) (?:popo|heces|vomito|panal))"),
    (
        "pregnancy",
        r"(?:vomit\w*|sangr\w*|manch\w*|dolor|contracciones|se me rompio la fuente|se rompio la fuente|"
        r"liquido|colicos)",
        PREGNANCY_CONTEXT,
    ),
    ("mental_health", r"(?:ataque de (?:panico|ansiedad)|crisis de (?:ansiedad|nervios)|oye voces|escucha voces)"),
    ("head_injury", r"(?:golpe\w*|pego|se pego|se golpeo) ~4 (?:la |su |en la )?cabeza|conmocion"),
    ("burn", r"(?:quemad\w*|quemadura|me queme|se quemo|ampolla\w*)"),
    ("urgent_stated", r"(?:es|esta) (?:muy )?urgente"),
    ("rash_fever", r"(?:manchas|ronchas|sarpullido) ~4 (?:fiebre|por todo el cuerpo|moradas)"),
]

# --- Human --------------------------------------------------------------------------------------------------------

_STAFF = (
    r"(?:human|humans|person|people|agent|rep|representative|operator|nurse|nurses|doctor|doctors|dr|physician|"
    r"manager|supervisor|receptionist|front desk|staff|staff member|office|someone|somebody|anyone|anybody|assistant|"
    r"medical assistant|secretary|hygienist|billing|vet|veterinarian|provider|practitioner|np|pa|girl|lady|guy|woman|"
    r"man|scheduler|coordinator|dentist|therapist|pharmacist|midwife|surgeon|team)"
)

HUMAN_EN = [
    (
        "human_request",
        r"(?:talk|speak|speaking|talking|chat) (?:to|with) (?:a |an |the |your |some |one of your )?"
        r"(?:real |live |actual |human |other )?" + _STAFF,
    ),
    (
        "human_request",
        r"(?:put|patch) (?:me |us )?through|transfer (?:me|my call|us)|(?:be |get |being )?transferred|"
        r"connect (?:me|us) (?:to|with)|(?:forward|send) (?:me|my call) to",
    ),
    (
        "human_request",
        r"(?:get|give|put) me ~3 (?:a |the |your )?(?:human|person|someone|somebody|front desk|"
        r"receptionist|nurse|operator|manager|doctor|office|staff)",
    ),
    (
        "human_request",
        r"(?:live|real|actual) (?:person|human|agent|operator|people|body)|representative|"
        r"human being|somebody real|someone real|person real",
    ),
    ("human_request", r"\bhuman(?! (?:papilloma\w*|resources|body|error|rights|services))"),
    ("human_request", r"\boperator\b"),
    ("human_request", r"(?<![a-z0-9] )(?:a |real |actual )?(?:person|somebody|someone)(?: please| now)?(?= [.,]|$)"),
    (
        "human_request",
        r"(?:no more|stop the|enough with the|enough|hate these|tired of the|tired of these) "
        r"(?:menus?|robots?|machines?|recordings?|bots?|automated|options|prompts)",
    ),
    (
        "human_request",
        r"(?:is this|are you|am i talking to|this is|talking to) (?:a |an |just a )?(?:machine|robot|"
        r"recording|bot|computer|automated|ai|real person)",
    ),
    (
        "human_request",
        r"(?:doesnt|dont|does not|do not|isnt|not|cant) (?:get|understand|understanding|getting) ~2 "
        r"(?:what im saying|what i am saying|me)",
    ),
    (
        "human_request",
        r"this (?:isnt|is not|aint) working(?! (?:out|for my schedule))|(?:pressing|press) "
        r"(?:buttons|zero|0)",
    ),
    ("human_request", r"(?:who can|who do|who should|who would|can) i (?:speak|talk) (?:to|with)"),
    (
        "human_request",
        r"(?:trying to|want to|need to|like to|wanna|have to) (?:reach|get a hold of|get ahold of|"
        r"get through to|get hold of)",
    ),
    (
        "human_request",
        r"(?:dont|do not|not|never) (?:want|wanna|like) (?:to )?(?:talk|talking|speak|speaking) (?:to|with) "
        r"(?:a |an |this |the )?(?:computer|robot|machine|bot|recording|ai|automated)",
    ),
    ("complaint", r"(?:whoever|whoevers|someone|somebody|the person|person|who) (?:is |s )?in charge"),
    (
        "human_request",
        r"(?:is there|can i get) (?:someone|somebody|anyone|anybody) (?:i can|to|that i can) "
        r"(?:talk|speak)",
    ),
    (
        "human_request",
        r"\bis (?!there|it|this|that|he|she|my|your|the|a|an|anything|everything|something|what)"
        r"[a-z]+ (?:[a-z0-9,]+ ){0,10}(?:around|available|in today|in the office|working today)\b",
    ),
    ("human_request", r"(?:is|are) (?:the )?(?:doctor|nurse|dr \w+|manager|dentist|vet) (?:in|there|available|around)"),
    (
        "human_request",
        r"(?:expecting my call|returning ~2 call|(?:told|asked) me to call (?:her|him|back|them)|"
        r"(?:she|he|they) (?:asked|told) me to call)",
    ),
    (
        "human_request",
        r"(?:someone|somebody|nurse|doctor|dr \w+|office|you|anyone) ~2 call me back|"
        r"(?:have|get) ~3 call me (?:back)?",
    ),
    (
        "complaint",
        r"(?:complain\w*|grievance|practice manager|office manager|(?:your|the) (?:manager|supervisor)|"
        r"(?:file|make|lodge|submit) ~2 (?:a )?(?:formal )?complaint|speak to (?:a|your|the) "
        r"(?:manager|supervisor)|unacceptable|ridiculous service|terrible service|report (?:a|the) "
        r"(?:doctor|nurse|staff))",
    ),
    (
        "professional",
        r"(?:im|i am|this is) (?:a |an |the |dr |doctor )?(?:\w+ )?(?:physician|doctor|dr|nurse|np|"
        r"pharmacist|caseworker|case worker|case manager|social worker|care coordinator|therapist|"
        r"paramedic|hospice|home health|nurse practitioner|resident|attorney|lawyer) ~6 "
        r"(?:calling|from|at|about|with|for)",
    ),
    (
        "professional",
        r"(?:mutual|shared|one of your|your) patients?|care coordination|on call (?:doctor|physician|"
        r"provider|nurse)|calling from ~3 (?:hospital|pharmacy|lab|insurance|medical center|er|"
        r"emergency room|nursing home|school|county)|peer to peer",
    ),
]

HUMAN_ES = [
    (
        "human_request",
        r"hablar con ~2 (?:una |un |la |el |su |sus |alguna |algun )?(?:persona|humano|alguien|"
        r"representante|operador\w*|recepcion\w*|enfermer\w*|doctor\w*|medic\w*|secretari\w*|gerente|"
        r"encargad\w*|supervisor\w*|asistente|veterinari\w*|dr|dra|agente|oficina|administrador\w*|"
        r"dentista|licenciad\w*)",
    ),
    (
        "human_request",
        r"(?:me|nos) (?:comunica|comunique|pasa|pase|transfiere|transfiera|conecta|conecte|"
        r"puede pasar|puede comunicar|podria pasar|podria comunicar) ~2 con",
    ),
    ("human_request", r"(?:paseme|pasame|comuniqueme|comunicame|transfierame|transfiereme|conecteme|conectame) ~2 con"),
    (
        "human_request",
        r"(?:que me atienda|atiendame|quiero|necesito|deme|dame) ~2 (?:una persona|un humano|"
        r"alguien (?:de verdad|real)|un representante|una operadora)",
    ),
    ("human_request", r"(?:persona real|persona de verdad|grabacion|maquina|robot|contestadora|no me entiende)"),
    ("human_request", r"con quien (?:hablo|puedo hablar|pueda hablar|me comunico|tengo que hablar|hablar)"),
    ("human_request", r"(?:operador\w*|representante)"),
    (
        "human_request",
        r"(?:me dijo que (?:le |la |lo )?(?:llamara|llame|marcara|hablara)|esta esperando mi llamada|"
        r"me (?:pidio|dijo) que (?:la|lo|le) (?:llamara|buscara))",
    ),
    ("human_request", r"(?:me|nos) (?:devuelva|regrese|regresen|devuelvan) la llamada|que me (?:llamen|llame)"),
    ("human_request", r"(?:esta|se encuentra) (?:la |el )?(?:doctor\w*|enfermer\w*|dr|dra|gerente|secretari\w*)"),
    (
        "complaint",
        r"(?:queja|quejarme|quejar|reclamo|reclamacion|gerente|supervisor\w*|inaceptable|pesimo servicio|"
        r"mal servicio)",
    ),
    (
        "professional",
        r"(?:soy|le habla|habla) (?:el |la |un |una )?(?:doctor\w*|medic[oa]|enfermer[oa]|"
        r"farmaceutic[oa]|trabajador\w* social|trabajadora social) ~6 (?:paciente|de parte|del hospital|"
        r"de la farmacia|de la clinica|llamando)|paciente en comun",
    ),
]

RULES: dict[str, dict[str, Sequence[tuple[str, ...]]]] = {
    "en": {TriageLevel.EMERGENCY: EMERGENCY_EN, TriageLevel.URGENT: URGENT_EN, TriageLevel.HUMAN: HUMAN_EN},
    "es": {TriageLevel.EMERGENCY: EMERGENCY_ES, TriageLevel.URGENT: URGENT_ES, TriageLevel.HUMAN: HUMAN_ES},
}

# --- Guards -------------------------------------------------------------------------------------------------------

# A negation cue counts unless what follows makes it something else ("not sure", "can't stop", "no para de",
# "no se si", "oh no", "no, he's...").
NEGATION = (
    r"(?<!oh )\b(?:no|not|never|nor|without|isnt|arent|wasnt|werent|dont|doesnt|didnt|hasnt|havent|hadnt|aint|"
    r"denies|denied|negative for|free of|sin|ni|nunca|jamas|tampoco|ningun\w*|nada de|no hay|zero|nobody|none)\b"
    r"(?! (?:sure|know|se (?:si|que|como|donde|cuanto|quien)|estoy segur\w*|stop\w*|para\b|paro\b|deja\b|dejo\b|"
    r"quit\w*|only|just|longer|way|matter|idea|doubt|he\b|she\b|hes\b|shes\b|i\b|im\b|my\b|we\b|no\b|oh\b|wait\b|"
    r"please\b|think (?:hes|shes|he is|she is|its|the) (?:@BREATHE|breathing)|let up|letting up|go away|going away|"
    r"quite|puede\b|puedo\b|respira|responde|reacciona|despierta))"
)
RESOLVED_AFTER = (
    r"(?:has |have |had |finally |already )?(?:stopped|went away|is gone|are gone|gone now|went down|resolved|cleared|"
    r"cleared up|(?:is|are|was|s|seems|seem) (?:totally |completely )?(?:fine|ok|okay|normal|better|good|under control)|"
    r"ya (?:paro|se (?:le |me )?(?:quito|paso|fue)|esta bien)|se (?:le |me )?(?:paso|quito)|ya no)\b"
)
PAST = (
    r"\b(?:(?:years?|months?|weeks?) ago|(?:a while|a long time|ages|way|long time|some time) (?:back|ago)|"
    r"last (?:year|month|week|summer|winter|spring|fall|autumn|season|time|christmas|visit|pregnancy)|back in|"
    r"in (?:january|february|march|april|june|july|august|september|october|november|december|\d{4}|the past|"
    r"college|high school)|history of|used to|when (?:i|he|she|we|they) (?:was|were) (?:a |little|young|pregnant|"
    r"younger|kids?|baby|\w+ years old)|as a (?:kid|child|baby|teenager)|previous(?:ly)?|before\b|"
    r"during (?:my|his|her) (?:c section|csection|surgery|delivery|pregnancy|last|procedure|colonoscopy)|"
    r"hace (?:\w+ )?(?:anos|ano|meses|mes|semanas|tiempo|mucho)|el (?:ano|mes) pasado|la (?:semana|temporada|vez) "
    r"pasada|(?:de|cuando era) (?:nino|nina|chico|chica|joven|bebe)|en (?:enero|febrero|marzo|abril|junio|julio|"
    r"agosto|septiembre|octubre|noviembre|diciembre)|antes\b|ya se (?:le |me )?(?:paso|quito|curo|recupero))"
)
PRESENT = (
    r"\b(?:now|right now|(?<!play )(?<!plays )(?<!playing )(?<!work )(?<!drive )(?<!travel )(?<!run )(?<!go )"
    r"(?<!swim )(?<!exercise )again|still|currently|at the moment|as we speak|today|tonight|this (?:morning|afternoon|"
    r"evening)|just now|is back|came back|back again|keeps|ahora|ahorita|otra vez|de nuevo|todavia|aun|sigue|siguen|"
    r"en este momento|hoy|esta (?:manana|noche|tarde)|volvio|regreso)\b"
)
# "Fine now", "the cast is off now": a "now" that says it is over is no present cue.
RESOLVED_NOW = (
    r"\b(?:fine|ok|okay|better|good|well|normal|off|over|gone|healed|recovered|done|stable|great|bien|mejor) "
    r"(?:now|ahora)\b|\b(?:now|ahora) (?:hes|shes|im|its|were|esta|estoy) (?:fine|ok|okay|better|good|well|normal|"
    r"bien|mejor)\b"
)
SENTENCE_RESOLVED = (
    r"\b(?:(?:hes|shes|im|i am|he is|she is|were|theyre|everyone is|its|it is|baby is|babys|all|were all) "
    r"(?:totally |completely |doing |all )?(?:fine|ok|okay|good|better|well|great|recovered|stable|normal) now|"
    r"(?:been|doing) (?:fine|good|ok|okay|great|well) (?:since|ever since)|fully recovered|"
    r"(?:esta|estoy|estamos) (?:bien|mejor|recuperad\w*) (?:ahora|ya)|ya (?:esta|estoy) bien|ya se (?:recupero|compuso))\b"
)
HYPOTHETICAL = (
    r"\b(?:(?:what|which) (?:are|r|is) (?:the )?(?:\w+ )?(?:signs?|symptoms?)|(?:signs?|symptoms?|warning signs) "
    r"(?:of|for)|how (?:can|do|would|will|should) (?:i|you|we|one|someone) (?:tell|know|recogni[sz]e|spot)|"
    r"difference between|at what point|what (?:happens|if)|in case|incase|for next time|what to (?:watch|look) "
    r"(?:for|out)|when to (?:worry|call|go)|should i (?:worry|be worried|be concerned)|can (?:you|a person|someone|"
    r"people) (?:die|get)|how (?:common|dangerous|serious) is|"
    r"que (?:pasa|hago|hacemos|debo hacer|tengo que hacer|hay que hacer) (?:si|cuando)|cual\w* son (?:los|las) "
    r"(?:sintomas|senales|signos)|(?:sintomas|senales|signos) de|como (?:se|puedo saber|saber|reconozco) (?:si|que)|"
    r"en caso de|para la proxima|cuando (?:hay que|debo|tengo que|se debe))\b"
)
# "if" and Spanish "si" are hypothetical unless the word before says otherwise ("not sure if he's breathing",
# "como si", "no se si"); "si" only counts before a subject or verb, so an unaccented "si" meaning yes is no cue.
IF_NOT_HYPOTHETICAL_AFTER = frozenset(
    [
        "know",
        "sure",
        "tell",
        "see",
        "check",
        "wondering",
        "idea",
        "unsure",
        "certain",
        "as",
        "like",
        "even",
        "asking",
        "ask",
    ]
)
SI_NOT_HYPOTHETICAL_AFTER = frozenset(["como", "saber", "se", "sabe", "sabemos"])
SI_HYPOTHETICAL_BEFORE = frozenset(
    [
        "mi",
        "me",
        "le",
        "se",
        "el",
        "la",
        "tu",
        "un",
        "una",
        "alguien",
        "yo",
        "tengo",
        "tiene",
        "uno",
        "llega",
        "alguna",
        "mis",
        "su",
        "sus",
        "te",
        "nos",
        "hay",
        "no",
        "algun",
        "ella",
        "ellos",
        "usted",
        "manana",
    ]
)
# Before the match: "refill on my", "after my", "talk about", "signs of".
UNRELATED_BEFORE = (
    r"(?:\b(?:talk|talking|learn|learning|read|reading|question|questions|info|information|class|course|asking|ask|"
    r"video|pamphlet|brochure|presentation|teach|teaching|training|lecture|seminar|article) (?:about|on|regarding|for) "
    r"(?:\w+ )?|\b(?:refill|refills|renew|renewal|prescription|prescriptions|cpr|first aid|history of|prevent\w*|"
    r"risk of|sobre|receta|curso|clase|platica|informacion sobre) (?:(?:on|for|of|de|del|la|el|my|his|her) )?(?:\w+ )?|"
    r"\b(?:after|since|post|despues de) (?:my|his|her|their|the|mi|su) |"
    r"\b(?:rehabilitacion|terapia|seguimiento|medicina|medicinas|pastillas|medicamentos?|recetas?|control|cita|"
    r"consulta|clinica|prueba|examen|formulario|clase|curso) (?:de|del|para|contra) (?:el |la |las |los |mi |su )?)$"
)
UNRELATED_AFTER = (
    "rehab rehabilitation clinic clinics medication medications medicine medicines meds med pills pill prescription "
    "prescriptions refill refills appointment appointments follow followup checkup test tests testing screening class "
    "classes course training support group groups form forms plan plans vaccine vaccines specialist specialists "
    "prevention preventive risk risks awareness program reversal narcan naloxone center survivor survivors disorder action kit kits unit ward "
    "study studies bill bills billing insurance coverage thinner thinners work pressure sugar draw type count panel "
    "bank donation donor levels level hazard hazards protocol protocols precautions monitor app video book seminar "
    "workshop certification certificate lecture presentation paperwork records report results doctor neurologist "
    "cardiologist history log diary "
    "medicamento medicamentos medicina medicinas pastillas cita citas receta recetas rehabilitacion terapia prueba "
    "pruebas examen examenes clase clases formulario seguimiento seguro factura control clinica consulta especialista "
    "vacuna vacunas"
)
IDIOMS = (
    r"\b(?:dying (?:to|for|of)\b|die (?:for|of (?:embarrassment|shame|boredom|laughter))|to die for|"
    r"(?:scared|sick|bored|worried|tired|frightened) to death|to death of|"
    r"(?<!chest )(?<!chest is )(?<!heart )(?:is|are|its|theyre|thats|this|these|was|were|s) killing me|"
    r"(?:gave|give|giving|gonna give|going to give|almost had|nearly had|about to have|almost gave me|nearly gave me|"
    r"(?:gonna|going to|will) have) (?:me )?(?:a )?(?:heart attack|stroke|coronary|aneurysm|cow|fit)"
    r"(?= (?:if|when|over|about|with|looking|reading|seeing|from|because)| [.,]|$)|"
    r"(?:blood pressure|bp) (?:\w+ ){0,2}through the roof|(?:lose|losing|lost) my mind|jaw (?:dropped|hit the floor)|"
    r"pain in the (?:neck|butt|ass|rear)|(?:heart|breath) (?:stopped|skipped a beat)|took my breath away|"
    r"(?:calling|call|gonna call|going to call) (?:911|the cops|the police) on|drop dead|dead (?:tired|on my feet)|"
    r"(?:laughing|laughed) (?:so hard|till)|(?:could|gonna|going to|i will|ill) kill (?:him|her|you|them|for)|"
    r"killed it|killing it|bleeding (?:me dry|money|us dry)|stroke of (?:luck|genius)|(?:screaming|yelling) at me|"
    r"(?:choke|choking) (?:on|back) (?:my|the) (?:words|tears)|choked up|(?:nearly|almost) chok\w*|broke the bank|"
    r"(?:dead|dying) (?:battery|phone)|(?:phone|battery) (?:is |was )?dying|heartbroken|broken heart|sick and tired|"
    r"off (?:my|his|her) chest|(?:throw|throwing|threw|pitch|pitching) a fit|having a fit (?:about|over|because)|"
    r"my heart (?:goes out|sank)|(?:dying|killing) (?:of|from) (?:laughter|boredom)|passing out (?:flyers|forms)|"
    r"breathing down my neck|(?:catch|catching) my breath (?:after|from) (?:the|running)|"
    r"(?:muero|muriendo|morir|morirme|muerto|muerta|muertos|me muero) (?:de|por) (?:la |el )?(?:hambre|sed|risa|"
    r"verguenza|pena|sueno|frio|calor|ganas|aburrimiento|miedo|nervios|cansancio|envidia|curiosidad|amor|tristeza|"
    r"coraje|susto|ver|saber|conocer|ir|que)\w*|(?:me|nos) (?:mata|matan|esta matando|estan matando) (?:el|la|los|las|"
    r"este|esta|estos|mi|tanto|de)\b|con el (?:jesus|alma|corazon) en (?:la boca|un hilo)|me va a dar (?:un |el )?"
    r"(?:infarto|ataque|algo|soponcio|patatus|coraje) (?:con|cuando|de|si)|(?:se me|me) (?:parte|partio|rompe|rompio) "
    r"el corazon|me saca de quicio|(?:estoy|ando) (?:muerto|muerta) de|me (?:quiero|voy a) (?:morir|matar) de "
    r"(?:la )?(?:verguenza|risa|pena)|ataque de (?:risa|nervios|tos)|sangre (?:fria|pesada|ligera)|"
    r"me (?:hierve|sube) la sangre|echando (?:sangre|chispas))"
)
JOKES = r"\b(?:haha\w*|jaja\w*|jeje\w*|lol|lmao|just kidding|im kidding|kidding|jk|es broma|(?:estoy|era) bromeando)\b"

# Word lists the engine uses for cheap checks before a regex (see triage._guarded and triage.normalize).
FILLER_HINTS = "um umm ummm uh uhh uhhh uhm erm hmm hmmm hm mm mmm eh ehh ah ahh este sea pues know mean"
CLAUSE_BREAKS = ". , but pero though although however except aunque sino embargo whereas mientras"
NEGATION_STOP = "and but so then because now y pero entonces porque ahora plus also tambien"
NEGATION_WORDS = "nobody none no not never nor without isnt arent wasnt werent dont doesnt didnt hasnt havent hadnt aint denies denied negative free sin ni nunca jamas tampoco nada zero"
UNRELATED_BEFORE_WORDS = "about on regarding for refill refills renew renewal prescription prescriptions cpr aid history prevent prevents preventing prevention risk sobre receta platica informacion after since post despues de del para contra"
RESOLVED_AFTER_FIRST = "has have had finally already stopped went is are gone resolved cleared was s seems seem ya se"

# --- Agent-side hedging -------------------------------------------------------------------------------------------

AGENT_HEDGES = (
    (
        "agent_refusal",
        r"\b(?:i (?:cant|cannot|can not|am unable to|m unable to|wont be able to) (?:help|answer|assist|provide|give|"
        r"advise|say|tell|diagnose|do that)|(?:im|i am) (?:unable|not able) to (?:help|answer|assist|provide|give|"
        r"advise)|(?:thats|that is) (?:beyond|outside) (?:what|my)|(?:im|i am) not (?:allowed|permitted|qualified) to|"
        r"no (?:puedo|podemos) (?:ayudar\w*|responder|contestar|darle|dar|decirle|aconsejar\w*)|"
        r"no (?:estoy|estoy autorizad\w*) (?:autorizad\w*|capacitad\w*) para)\b",
    ),
    (
        "agent_uncertain",
        r"\b(?:(?:im|i am) not (?:sure|certain)(?! (?:i |we )?(?:caught|heard|got|understood|follow))|"
        r"i (?:dont|do not) know(?! (?:your|if you|whether you|what you))|i (?:dont|do not) have (?:that|this|any|"
        r"enough) information|(?:im|i am) not (?:the right|able to confirm)|i (?:cant|cannot) (?:confirm|be sure)|"
        r"no (?:estoy|estamos) segur\w*|no (?:lo )?se (?!(?:su|tu) nombre)|no tengo (?:esa |esta |la )?informacion|"
        r"no sabria (?:decirle|decirte)|no (?:le )?puedo confirmar)",
    ),
)
