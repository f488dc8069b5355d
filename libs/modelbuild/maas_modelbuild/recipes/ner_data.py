"""Training text for the NER recipe: teacher-labelled tweets, WNUT-16 tweets, and synthesised sentences.

Span conventions (the same as the hand-written evaluation set, data/ner_eval.jsonl): OntoNotes 5 types and
extents, except that a leading "the" is never part of a name (``the [Beatles]``, ``the [1990s]``) unless it
belongs to a title (``[The Starry Night]``), a possessive 's is never part of a name, currency symbols are
part of MONEY, and #hashtags / @mentions / URLs are not entities.

Synthesised sentences are gold by construction: templates written for four domains (news, music and arts,
reviews, social posts) whose slots are filled from the lists below and from generators (random full names,
titles, product models, dates, amounts). Every surface that occurs in the evaluation set is removed from the
lists before sampling, so the evaluation never sees a name the build put into a template.
"""

from __future__ import annotations

import random
import re
from typing import Callable

# ------------------------------------------------------------------------------------------- gazetteers
FIRST = """James Maria Wei Aisha Olga Mateo Priya Liam Sofia Kwame Yuki Hannah Omar Elena Tomasz Ingrid Diego
Fatima Lucas Chloe Arjun Mei Noah Amara Lars Zainab Pedro Nadia Ivan Leila Hugo Freya Samuel Ana Kofi Mira Daniel
Sven Grace Rafael Hana Emeka Clara Jonas Lucia Ravi Isabel Felix Nora Thiago Keiko Oscar Amelia Malik Eva Jorge
Astrid Tariq Rosa Benedikt Yasmin Henrik Chiara Andrei Ayumi Patrick Imani Marco Helena Sipho Julia Mehmet Laura
Viktor Amira Joaquin Sarah Tobias Naomi Rahul Camille Ibrahim Greta Luis Ines Dmitri Abena Kenji Charlotte Paulo
Lena Ahmed Zoe Nikolai Aaliyah Giovanni Maya Enzo Beatriz Chidi Linnea Stefan Hiroshi Catalina Michael Jennifer
Robert Linda David Susan Thomas Karen Anthony Nancy Mark Lisa Steven Betty Kevin Emily Brian Megan Ethan Olivia
Jacob Sophie Aiden Ruth Alejandro Valentina Min-jun Seo-yeon Anil Deepika Tunde Ngozi Bongani Thandiwe Finn Saoirse
Malin Bjorn Agnieszka Piotr Zoltan Eszter Ricardo Fernanda Jamal Keisha Tyrone Shanice""".split()
LAST = """Smith Garcia Müller Nakamura Okafor Rossi Kowalski Novak Haddad Johansson Silva Kim Chen Patel Ivanova
Dubois Schmidt Fernandez Andersen Mensah Tanaka Costa Nguyen Petrov Hernandez Jensen Kaur Ali Moreau Wagner Lopez
Takahashi Ferreira Ozturk Lindqvist Abiodun Brennan Castillo Yamamoto Kovacs Fischer Romero Asante Sato Horvath
Delgado Becker Nilsson Mahlaba Okoye Varga Bianchi Santos Weber Park Hoffmann Gupta Murphy O'Connor Walsh Byrne
Lindgren Ramos Shapiro Cohen Goldberg Friedman Klein Schwartz Rahman Hussain Qureshi Bakr Mbeki Achebe Adeyemi Ward
Hughes Price Bennett Coleman Jenkins Perry Russell Griffin Hayes Myers Ford Hamilton Graham Sullivan Wallace West
Cole Stone Fraser Grant Lambert Moreno Ortiz Vega Reyes Mendoza Aguilar Navarro Torres Vargas Gil Molina Blanco
Suárez Jiménez Løvland Håkansson Šimić Dvorak Kováč Nowak Wiśniewska Zieliński Esposito Ricci Marino Greco Bruno
Gallo Conti Fontana Caruso Kagame Otieno Wanjiru Kariuki Mwangi Banda Phiri Chanda Tembo Hosseini Karimi Farahani
Yilmaz Demir Aydin Kaya Arslan Lee Choi Jung Kang Cho Yoon Lim Han Zhou Wu Zhang Huang Xu Sun Ma Hu Guo Lin He""".split()
MONONYMS = """Zaria Solange Kaito Marisol Nyota Oriel Lumi Tavi Calloway Sade Banks Kesha Lorde Yuna Rhye Fenne
Noname Tove Aurora Sigrid Kali Mabel Raye Cleo Jovi Akon Seal Maluma Shakira Anitta Burna Wizkid Tems Ayra
Stromae Zaz Mika Dido Enya Moby Usher Pink Sia Lizzo Halsey Giveon Khalid Bazzi Jorja Raveena Arlo""".split()
CITIES = """Madrid Rome Lisbon Prague Budapest Warsaw Krakow Dublin Glasgow Bristol Liverpool Leeds Cardiff Belfast
Oslo Helsinki Copenhagen Gothenburg Hamburg Cologne Frankfurt Stuttgart Dresden Salzburg Zurich Geneva Basel Milan
Naples Turin Florence Venice Seville Valencia Bilbao Porto Marseille Lille Bordeaux Nice Toulouse Antwerp Rotterdam
Utrecht Brussels Ghent Luxembourg Athens Thessaloniki Istanbul Ankara Beirut Amman Cairo Alexandria Casablanca Tunis
Accra Dakar Abuja Kano Kinshasa Kampala Kigali Addis Ababa Mombasa Johannesburg Cape Town Durban Harare Lusaka Mumbai
Delhi Bangalore Chennai Kolkata Hyderabad Karachi Lahore Dhaka Colombo Kathmandu Bangkok Hanoi Jakarta Manila
Singapore Kuala Lumpur Seoul Busan Beijing Shanghai Shenzhen Taipei Hong Kong Kyoto Yokohama Sapporo Perth Adelaide
Brisbane Auckland Wellington Vancouver Montreal Calgary Quebec Boston Seattle Denver Houston Dallas Phoenix Detroit
Nashville Memphis Atlanta Philadelphia Baltimore Pittsburgh Portland Minneapolis San Francisco Los Angeles San Diego
New Orleans Las Vegas Havana Bogota Lima Quito Santiago Montevideo Caracas Guadalajara Monterrey Recife Salvador
Porto Alegre Tbilisi Yerevan Baku Almaty Tashkent Riga Tallinn Vilnius Minsk Kyiv Odesa Lviv Bucharest Sofia
Belgrade Zagreb Ljubljana Sarajevo Bratislava Graz Innsbruck Bergen Aarhus Malmo Uppsala Tampere Reims Nantes
Strasbourg Bonn Heidelberg Leipzig Nuremberg Bologna Verona Palermo Granada Malaga Cordoba Coimbra Edinburgh Oxford
Cambridge York Brighton Sheffield Newcastle Aberdeen Galway Cork Limerick Reykjavik""".split("\n")
CITIES = [c for line in CITIES for c in re.split(r"\s(?=[A-Z])", line.strip())]
# multi-word cities were split above; put the known ones back together
_MULTI = ["Addis Ababa", "Cape Town", "Kuala Lumpur", "Hong Kong", "San Francisco", "Los Angeles", "San Diego",
          "New Orleans", "Las Vegas", "Porto Alegre", "Tel Aviv", "Rio de Janeiro", "Buenos Aires", "Mexico City",
          "Abu Dhabi", "Ho Chi Minh City", "St. Petersburg", "Salt Lake City", "Kansas City", "Quebec City"]
CITIES = sorted(set(c for c in CITIES if not any(c in m.split() for m in _MULTI)) | set(_MULTI))
COUNTRIES = """France Italy Portugal Poland Austria Belgium Netherlands Sweden Norway Finland Denmark Ireland
Scotland Wales Greece Turkey Egypt Kenya Ghana Senegal Ethiopia Uganda Rwanda Tanzania Zimbabwe Zambia Angola
Brazil Argentina Chile Peru Colombia Venezuela Ecuador Bolivia Uruguay Paraguay Cuba Jamaica Haiti Canada Australia
Pakistan Bangladesh Nepal Vietnam Thailand Malaysia Philippines Singapore Taiwan Korea Mongolia Iran Iraq Lebanon
Jordan Qatar Oman Kuwait Israel Romania Bulgaria Serbia Croatia Slovenia Slovakia Hungary Czechia Estonia Latvia
Lithuania Georgia Armenia Azerbaijan Kazakhstan Uzbekistan Iceland Luxembourg Switzerland Russia Belarus Moldova
Albania Tunisia Algeria Libya Sudan Somalia Mali Niger Chad Cameroon Gabon Namibia Botswana Mozambique Madagascar
Peru Fiji Samoa""".split()
COUNTRIES += ["South Africa", "New Zealand", "Saudi Arabia", "Sri Lanka", "South Korea", "North Korea",
              "Costa Rica", "Ivory Coast", "Czech Republic", "United Kingdom", "United Arab Emirates"]
STATES = """California Texas Ohio Oregon Georgia Michigan Arizona Nevada Utah Colorado Iowa Kansas Kentucky Maine
Vermont Virginia Alabama Tennessee Louisiana Minnesota Wisconsin Montana Idaho Alaska Hawaii Ontario Quebec Bavaria
Catalonia Andalusia Lombardy Sicily Provence Normandy Brittany Queensland Tasmania Punjab Kerala Bengal""".split()
STATES += ["New Jersey", "New Mexico", "South Carolina", "West Virginia", "British Columbia", "New South Wales"]
NORP = """American British French German Italian Spanish Portuguese Dutch Swedish Norwegian Danish Finnish Irish
Scottish Welsh Polish Czech Hungarian Romanian Greek Turkish Egyptian Nigerian Ghanaian Ethiopian Brazilian
Argentine Mexican Colombian Peruvian Chilean Cuban Canadian Australian Japanese Chinese Korean Vietnamese Thai
Filipino Indonesian Pakistani Bangladeshi Iranian Israeli Palestinian Lebanese Syrian Russian Ukrainian Georgian
European African Asian Latino Muslim Christian Jewish Hindu Buddhist Catholic Protestant Sikh Democrats Republicans
Conservatives Socialists Liberals Greens""".split()
LANGUAGES = """English French German Spanish Portuguese Italian Dutch Swedish Polish Russian Arabic Hebrew Hindi
Urdu Bengali Punjabi Tamil Japanese Korean Mandarin Cantonese Swahili Yoruba Igbo Zulu Turkish Greek Latin Welsh
Irish Basque Catalan Galician Persian Tagalog Vietnamese""".split()
COMPANIES = """Siemens Nestle Unilever Philips Ericsson Nokia Spotify Shopify Zalando Adidas Puma Heineken Carlsberg
Renault Peugeot Fiat Ferrari Porsche Audi Volvo Scania Maersk Equinor Repsol Iberdrola Santander Barclays HSBC Lloyds
Allianz Deutsche Bank Credit Suisse UBS ING Rabobank BNP Paribas Danone Carrefour Tesco Sainsbury's Aldi Lidl Primark
Zara Uniqlo Sony Panasonic Nintendo Hitachi Honda Nissan Mazda Subaru Hyundai Kia LG Huawei Xiaomi Tencent Alibaba
Baidu ByteDance Infosys Wipro Tata Reliance Airtel Safaricom MTN Jumia Flipkart Grab Gojek Netflix Disney Warner
Paramount Pixar Marvel Intel AMD Qualcomm Oracle IBM Cisco Adobe Salesforce Uber Lyft Airbnb Zoom Slack Dropbox
Pinterest Reddit Twitter Facebook Meta YouTube LinkedIn Snapchat PayPal Stripe Visa Mastercard Walmart Target Costco
Nike Reebok Ford Chrysler Boeing Lockheed Pfizer Moderna AstraZeneca Novartis Roche Bayer BASF Shell BP ExxonMobil
Chevron Aramco Gazprom Emirates Qantas Ryanair easyJet KLM Iberia Lufthansa Finnair Aeroflot Etsy eBay Rakuten""".split()
COMPANIES = [c for c in COMPANIES]
COMPANIES += ["Deutsche Telekom", "General Motors", "General Electric", "Goldman Sachs", "Morgan Stanley",
              "JPMorgan Chase", "Bank of America", "American Airlines", "United Airlines", "British Airways",
              "Air France", "Singapore Airlines", "Turkish Airlines", "Procter & Gamble", "Johnson & Johnson",
              "Coca-Cola", "PepsiCo", "McDonald's", "Burger King", "Pizza Hut", "Marks & Spencer", "Rolls-Royce",
              "Mercedes-Benz", "Land Rover", "Aston Martin", "Universal Music", "Sony Music", "Warner Records",
              "Deutsche Grammophon", "Blue Note Records", "Motown Records", "Sub Pop", "Rough Trade"]
MEDIA = ["BBC", "CNN", "Al Jazeera", "Bloomberg", "Associated Press", "Agence France-Presse", "Le Monde",
         "Der Spiegel", "The Guardian", "Financial Times", "Washington Post", "Rolling Stone", "Pitchfork",
         "Billboard", "NPR", "Sky News", "ITV", "ABC News", "NBC", "CBS", "Fox News", "Variety", "Vogue"]
INSTITUTIONS = ["European Commission", "World Bank", "African Union", "Red Cross", "Amnesty International",
                "Greenpeace", "UNESCO", "UNICEF", "NATO", "OPEC", "FIFA", "UEFA", "Interpol", "European Union",
                "Federal Bureau of Investigation", "Ministry of Defence", "Ministry of Health", "Home Office",
                "Department of Justice", "State Department", "Senate", "House of Commons", "Bundestag", "Labour Party",
                "Conservative Party", "Democratic Party", "Republican Party", "Green Party", "Sorbonne",
                "Oxford University", "Stanford University", "Yale", "Princeton", "MIT", "Royal Academy of Music",
                "Berklee College of Music", "Royal College of Art", "Bauhaus", "Max Planck Institute"]
RIVERS = ["Thames", "Seine", "Loire", "Elbe", "Oder", "Vistula", "Po", "Tiber", "Ebro", "Tagus", "Volga", "Dnieper",
          "Nile", "Congo", "Niger", "Zambezi", "Ganges", "Indus", "Mekong", "Yangtze", "Amazon River", "Mississippi",
          "Missouri River", "Hudson", "Colorado River", "St. Lawrence", "Shannon", "Severn", "Tyne"]
LOCS = ["Alps", "Pyrenees", "Andes", "Himalayas", "Sahara", "Mediterranean", "Atlantic", "Pacific", "Baltic",
        "North Sea", "Caribbean", "Middle East", "Balkans", "Scandinavia", "Siberia", "Europe", "Asia", "Africa",
        "South America", "North America", "Antarctica", "Arctic", "Gulf of Mexico", "Lake Geneva", "Lake Como",
        "Lake Victoria", "Lake Tahoe", "Mount Everest", "Mount Kilimanjaro", "Mont Blanc", "Mount Etna", "Ben Nevis",
        "Black Forest", "Scottish Highlands", "Lake District", "Grand Canyon", "Amazon rainforest", "Gobi Desert",
        "Red Sea", "Dead Sea", "Black Sea", "Bay of Biscay", "Cape of Good Hope", "Iberian Peninsula", "Silicon Valley"]
STADIUMS = ["Old Trafford", "Anfield", "Camp Nou", "San Siro", "Allianz Arena", "Stade de France", "Maracana",
            "Madison Square Garden", "Royal Albert Hall", "Albert Hall", "Barbican", "Southbank Centre",
            "Sydney Cricket Ground", "Croke Park", "Ellis Park", "Lord's", "Red Rocks Amphitheatre", "Ryman Auditorium",
            "Apollo Theater", "Radio City Music Hall", "Royal Festival Hall", "Elbphilharmonie", "Konzerthaus",
            "Musikverein", "La Scala", "Palais Garnier", "Bolshoi Theatre", "Alte Pinakothek", "Rijksmuseum",
            "Uffizi", "Prado", "Guggenheim", "Brooklyn Bridge", "Tower Bridge", "Charles Bridge", "Big Ben",
            "Buckingham Palace", "White House", "Pentagon", "Colosseum", "Acropolis", "Taj Mahal", "Burj Khalifa",
            "JFK Airport", "Gatwick", "Schiphol", "Changi Airport", "O'Hare", "Penn Station", "Grand Central",
            "King's Cross", "Gare du Nord", "Oxford Street", "Fifth Avenue", "Champs-Elysees", "Abbey Road",
            "Central Park", "Hyde Park", "Times Square", "Trafalgar Square", "Red Square", "Statue of Liberty"]
FAC_SUFFIX = ["Stadium", "Arena", "Bridge", "Airport", "Hall", "Theatre", "Station", "Tower", "Cathedral", "Palace",
              "Museum", "Gallery", "Park", "Square", "Street", "Avenue", "Hospital", "Center", "Pavilion", "Bowl"]
EVENTS = ["World Cup", "Olympics", "Winter Olympics", "Super Bowl", "Tour de France", "Eurovision", "Oscars",
          "Grammys", "Champions League final", "Ryder Cup", "Australian Open", "US Open", "French Open",
          "Cannes Film Festival", "Venice Biennale", "Edinburgh Fringe", "SXSW", "Burning Man", "Oktoberfest",
          "Mardi Gras", "Lollapalooza", "Primavera Sound", "Roskilde Festival", "Proms", "Salzburg Festival",
          "Second World War", "World War II", "Cold War", "Vietnam War", "French Revolution", "Brexit referendum",
          "Six Nations", "Euro 2024", "Copa America", "Africa Cup of Nations", "Paris Marathon", "Boston Marathon",
          "Rugby World Cup", "Ashes", "Masters", "Kentucky Derby", "Montreux Jazz Festival", "Sundance"]
EVENT_SUFFIX = ["Festival", "Marathon", "Jazz Festival", "Film Festival", "Book Fair", "Open", "Grand Prix",
                "Summit", "Biennale", "Half Marathon", "Folk Festival", "Music Week", "Carnival"]
LAWS = ["Affordable Care Act", "Civil Rights Act", "Clean Air Act", "Patriot Act", "First Amendment",
        "Second Amendment", "Geneva Conventions", "Paris Agreement", "Magna Carta", "Digital Services Act",
        "General Data Protection Regulation", "Equality Act", "Online Safety Act", "Inflation Reduction Act"]
PRODUCT_BRANDS = ["Galaxy", "Pixel", "iPad", "MacBook", "ThinkPad", "Surface", "Kindle", "PlayStation", "Xbox",
                  "GoPro", "Fitbit", "Garmin Forerunner", "Roomba", "Nespresso Vertuo", "Vitamix", "KitchenAid",
                  "Fender Stratocaster", "Gibson Les Paul", "Yamaha P", "Roland TR", "Korg Minilogue", "Moog Subsequent",
                  "Volkswagen Golf", "Ford Focus", "Honda Civic", "Tesla Model", "Kia EV", "Nissan Leaf",
                  "Renault Clio", "Mazda MX", "Audi A", "Peugeot", "Xperia", "OnePlus", "Moto G", "Echo Dot",
                  "Bose QuietComfort", "Sennheiser HD", "Sonos Era", "Beats Studio", "Oculus Quest", "Steam Deck",
                  "Game Boy", "Walkman", "Chromebook", "Apple TV", "Fire TV Stick", "Technics SL", "Leica M",
                  "Nikon Z", "Fujifilm X", "Hasselblad X"]
PRODUCT_WORDS = ["Pro", "Max", "Ultra", "Mini", "Plus", "Air", "Lite", "Neo", "S", "X", "Edge", "Go"]

ADJ = """Silent Golden Broken Crimson Velvet Electric Hollow Wild Distant Quiet Burning Paper Glass Midnight Silver
Lonely Secret Endless Frozen Restless Blue Scarlet Gentle Hidden Bitter Sweet Northern Southern Lost Last Little
Dark Bright Strange Wandering Sleeping Dancing Falling Rising Savage Tender Neon Amber Cosmic Rusty Static""".split()
NOUN = """River Garden Harbor Mirror Storm Ocean Window Letter Summer Winter Shadow Fire Light Stone Bird Heart
Kingdom City Road Dream Song Night Morning Horse Wolf Rose Island Train Ghost Machine Forest Lantern Crown Echo
Tide Compass Orchard Citadel Meadow Avalanche Sparrow Violin Piano Lighthouse Carnival Desert Thunder""".split()
PLURAL = """Foxes Lions Strangers Sparrows Giants Wolves Pilots Ghosts Kings Dreamers Rebels Saints Shadows
Waves Tigers Ravens Owls Bandits Drifters Twins Horses Comets Satellites Lanterns Echoes Stones Arrows""".split()
FORMS = ["Symphony No. {n}", "Piano Concerto No. {n}", "String Quartet No. {n}", "Violin Concerto in {key}",
         "Requiem in {key}", "Mass in {key}", "Sonata in {key}", "Nocturne in {key}", "Cello Suite No. {n}"]
KEYS = ["D minor", "C major", "E-flat major", "G minor", "A major", "B minor", "F major", "C-sharp minor"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
NUMBER_WORDS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "fifteen",
                "twenty", "thirty", "forty", "fifty", "a hundred"]
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
            "1st", "2nd", "3rd", "4th", "5th", "11th", "20th", "100th"]
EMOJI = ["😍", "🔥", "😂", "🙌", "💯", "😭", "✨", "🎶", "🎸", "❤️", "👏", "🙄", "😤", "🥳", "📸", "🍕", "⚽", "🎉", "🤔",
         "👀", "💔", "🌧️", "☀️", "🇫🇷", "🇧🇷", "🎤", "🎧", "🏆", "😴", "🤯"]


class Slots:
    """Random slot values: ``fill(kind)`` returns (surface, label or None for plain text)."""

    def __init__(self, rng: random.Random, banned: set[str]) -> None:
        self.rng = rng
        ok = lambda xs: [x for x in xs if x.lower() not in banned]  # noqa: E731 - local filter
        self.first, self.last, self.mono = ok(FIRST), ok(LAST), ok(MONONYMS)
        self.cities, self.countries, self.states = ok(CITIES), ok(COUNTRIES), ok(STATES)
        self.norp, self.langs = ok(NORP), ok(LANGUAGES)
        self.companies, self.media, self.inst = ok(COMPANIES), ok(MEDIA), ok(INSTITUTIONS)
        self.rivers, self.locs, self.facs, self.events = ok(RIVERS), ok(LOCS), ok(STADIUMS), ok(EVENTS)
        self.laws, self.brands = ok(LAWS), ok(PRODUCT_BRANDS)
        self.banned = banned

    def pick(self, xs: list[str]) -> str:
        return self.rng.choice(xs)

    def _clean(self, make: Callable[[], str]) -> str:
        for _ in range(20):
            s = make()
            if s.lower() not in self.banned:
                return s
        return s

    # -- names
    def person(self) -> str:
        r = self.rng.random()
        if r < 0.6:
            return f"{self.pick(self.first)} {self.pick(self.last)}"
        if r < 0.72:
            return f"{self.pick(self.first)} {self.pick(self.first)} {self.pick(self.last)}"
        if r < 0.8:
            return f"{self.pick(self.first)} {self.rng.choice(['van', 'de', 'von', 'da', 'del', 'di', 'bin', 'al-'])}" \
                   f"{'' if self.rng.random() < 0.1 else ' '}{self.pick(self.last)}".replace("al- ", "al-")
        if r < 0.9:
            return self.pick(self.last)
        return self.pick(self.mono)

    def gpe(self) -> str:
        r = self.rng.random()
        return self.pick(self.cities if r < 0.6 else self.countries if r < 0.85 else self.states)

    def org(self) -> str:
        r = self.rng.random()
        if r < 0.3:
            return self.pick(self.companies)
        if r < 0.4:
            return self.pick(self.media)
        if r < 0.5:
            return self.pick(self.inst)
        if r < 0.6:
            return f"{self.pick(self.cities)} {self.rng.choice(['United', 'City', 'Rovers', 'Athletic', 'FC', 'Wanderers'])}"
        if r < 0.7:
            return f"{self.pick(self.cities)} {self.rng.choice(['Philharmonic', 'Symphony Orchestra', 'Chamber Orchestra', 'Opera', 'Ballet', 'Chamber Choir', 'Conservatory', 'University'])}"
        if r < 0.8:
            return f"{self.pick(self.last)} {self.rng.choice(['Records', 'Group', 'Holdings', 'Capital', 'Motors', 'Foods', 'Labs', 'Media', '& Sons', 'Partners', 'Pharma', 'Airlines', 'Bank'])}"
        if r < 0.9:
            return self.band()
        return f"{self.rng.choice(['University of', 'Bank of', 'Museum of', 'Academy of'])} {self.pick(self.cities)}"

    def band(self) -> str:
        r = self.rng.random()
        if r < 0.5:
            return f"{self.pick(ADJ)} {self.pick(PLURAL)}"
        if r < 0.75:
            return self._clean(lambda: self.pick(NOUN) + self.rng.choice(["s", "head", "light", " Club", " Society", " Collective"]))
        return f"{self.pick(self.first)} {self.pick(self.last)} {self.rng.choice(['Trio', 'Quartet', 'Band', 'Orchestra', 'Ensemble'])}"

    def fac(self) -> str:
        if self.rng.random() < 0.4:
            return self.pick(self.facs)
        base = self.pick(self.last + self.cities + NOUN)
        return f"{base} {self.rng.choice(FAC_SUFFIX)}"

    def loc(self) -> str:
        r = self.rng.random()
        if r < 0.45:
            return self.pick(self.locs)
        if r < 0.75:
            return self.pick(self.rivers)
        return self.rng.choice([f"Mount {self.pick(self.last)}", f"Lake {self.pick(self.last)}",
                                f"{self.pick(self.last)} River", f"{self.pick(self.last)} Valley"])

    def event(self) -> str:
        r = self.rng.random()
        if r < 0.45:
            return self.pick(self.events)
        if r < 0.85:
            return f"{self.pick(self.cities)} {self.rng.choice(EVENT_SUFFIX)}"
        return self.rng.choice([f"Hurricane {self.pick(self.first)}", f"Storm {self.pick(self.first)}",
                                f"Battle of {self.pick(self.cities)}", f"{self.rng.randint(1990, 2030)} Olympics"])

    def work(self) -> str:
        r = self.rng.random()
        if r < 0.25:
            return f"{self.pick(ADJ)} {self.pick(NOUN)}"
        if r < 0.4:
            return f"The {self.pick(NOUN)} of {self.pick(NOUN)}s"
        if r < 0.5:
            return f"The {self.pick(ADJ)} {self.pick(NOUN)}"
        if r < 0.6:
            return f"{self.pick(NOUN)} in {self.pick(self.cities)}"
        if r < 0.7:
            return self.pick(FORMS).format(n=self.rng.randint(1, 9), key=self.pick(KEYS))
        if r < 0.8:
            return self.rng.choice(["Songs of", "Letters to", "Dreams of", "Nights in", "Return to", "Goodbye,"]) \
                   + f" {self.pick(self.cities + NOUN)}"
        if r < 0.9:
            return self.pick(NOUN) + self.rng.choice(["", "s", "fall", "light", "land"])
        return f"{self.pick(ADJ)} {self.pick(PLURAL)}"

    def product(self) -> str:
        b = self.pick(self.brands)
        r = self.rng.random()
        if r < 0.4:
            return f"{b} {self.rng.randint(2, 20)}"
        if r < 0.7:
            return f"{b} {self.rng.choice(PRODUCT_WORDS)}"
        if r < 0.85:
            return f"{b} {self.rng.choice('SXZAGMRT')}{self.rng.randint(1, 99)}"
        return b

    # -- numbers and times
    def date(self) -> str:
        r, rng = self.rng.random(), self.rng
        y = rng.randint(1700, 2029)
        options = [
            lambda: str(y), lambda: self.pick(MONTHS), lambda: f"{self.pick(MONTHS)} {rng.randint(1, 28)}",
            lambda: f"{rng.randint(1, 28)} {self.pick(MONTHS)} {y}", lambda: f"{self.pick(MONTHS)} {y}",
            lambda: f"{self.pick(MONTHS)} {rng.randint(1, 28)}, {y}", lambda: self.pick(DAYS),
            lambda: rng.choice(["yesterday", "today", "tomorrow", "last week", "next week", "last year", "next year",
                                "this week", "this month", "last month", "next month", "this summer", "last winter",
                                "this spring", "next autumn", "this weekend", "last weekend", "next Monday",
                                "last Friday", "this year", "recent years", "the past decade"]),
            lambda: f"{rng.randint(2, 30)} years ago", lambda: f"{rng.choice(NUMBER_WORDS)} weeks",
            lambda: f"{rng.choice(NUMBER_WORDS)} days", lambda: f"{rng.randint(2, 60)} years",
            lambda: f"{rng.randint(195, 202)}0s", lambda: f"the {rng.choice(['18th', '19th', '20th', '21st'])} century",
            lambda: f"{rng.choice(['spring', 'summer', 'autumn', 'winter'])} {y}",
            lambda: f"the {rng.choice(['first', 'second', 'third', 'fourth'])} quarter",
        ]
        return rng.choice(options)()

    def time(self) -> str:
        rng = self.rng
        return rng.choice([
            lambda: f"{rng.randint(1, 12)} {rng.choice(['a.m.', 'p.m.', 'am', 'pm'])}",
            lambda: f"{rng.randint(1, 12)}{rng.choice(['am', 'pm'])}", lambda: f"{rng.randint(0, 23)}:{rng.choice(['00', '15', '30', '45'])}",
            lambda: rng.choice(["tonight", "this morning", "this afternoon", "this evening", "midnight", "noon",
                                "last night", "tomorrow morning", "overnight"]),
            lambda: f"{rng.choice(NUMBER_WORDS[:8])} hours", lambda: f"{rng.randint(2, 90)} minutes",
            lambda: f"{rng.randint(2, 12)} hours", lambda: f"{rng.choice(DAYS)} night",
            lambda: f"an hour", lambda: f"half an hour", lambda: f"{rng.randint(5, 55)} mins",
        ])()

    def money(self) -> str:
        rng = self.rng
        amount = rng.choice([str(rng.randint(2, 999)), f"{rng.randint(1, 99)}.{rng.randint(10, 99)}",
                             f"{rng.randint(1, 999):,}", f"{rng.randint(1, 50)},{rng.randint(100, 999)}"])
        big = rng.choice(["", "", " million", " billion", "m", "bn", "k"])
        return rng.choice([f"${amount}{big}", f"€{amount}{big}", f"£{amount}{big}", f"{amount}{big} dollars",
                           f"{amount} euros", f"US${amount}{big}", f"{amount} pounds", f"¥{amount}{big}"])

    def percent(self) -> str:
        v = self.rng.choice([str(self.rng.randint(1, 99)), f"{self.rng.randint(0, 20)}.{self.rng.randint(1, 9)}"])
        return self.rng.choice([f"{v}%", f"{v} percent", f"{v} per cent"])

    def quantity(self) -> str:
        v = self.rng.choice([str(self.rng.randint(2, 500)), f"{self.rng.randint(1, 9)}.{self.rng.randint(1, 9)}",
                             self.rng.choice(NUMBER_WORDS)])
        return f"{v} {self.rng.choice(['km', 'kilometres', 'miles', 'kg', 'kilograms', 'pounds', 'tons', 'feet', 'metres', 'litres', 'degrees', 'acres', 'square miles', 'inches'])}"

    def cardinal(self) -> str:
        rng = self.rng
        return rng.choice([lambda: str(rng.randint(2, 99)), lambda: f"{rng.randint(1, 999):,}",
                           lambda: f"{rng.randint(1, 999):,},{rng.randint(100, 999)}", lambda: rng.choice(NUMBER_WORDS),
                           lambda: rng.choice(["dozens", "hundreds", "thousands", "millions"]),
                           lambda: f"{rng.choice(['about', 'more than', 'nearly', 'over', 'almost'])} {rng.randint(2, 999)}",
                           lambda: f"{rng.randint(1, 9)}.{rng.randint(1, 9)} million"])()

    def ordinal(self) -> str:
        return self.pick(ORDINALS)

    def first_name(self) -> str:
        return self.pick(self.first)

    def city(self) -> str:
        return self.pick(self.cities)

    def country(self) -> str:
        return self.pick(self.countries)

    def nat(self) -> str:
        return self.pick(self.norp)

    def lang(self) -> str:
        return self.pick(self.langs)

    def law(self) -> str:
        return self.pick(self.laws)


# slot name -> (generator method, label)
SLOT_TYPES = {
    "PER": ("person", "PERSON"), "FN": ("first_name", "PERSON"), "GPE": ("gpe", "GPE"), "CITY": ("city", "GPE"),
    "COUNTRY": ("country", "GPE"), "ORG": ("org", "ORG"), "BAND": ("band", "ORG"), "FAC": ("fac", "FAC"),
    "LOC": ("loc", "LOC"), "EVENT": ("event", "EVENT"), "WORK": ("work", "WORK_OF_ART"),
    "PRODUCT": ("product", "PRODUCT"), "NORP": ("nat", "NORP"), "LANG": ("lang", "LANGUAGE"), "LAW": ("law", "LAW"),
    "DATE": ("date", "DATE"), "TIME": ("time", "TIME"), "MONEY": ("money", "MONEY"), "PCT": ("percent", "PERCENT"),
    "QTY": ("quantity", "QUANTITY"), "CARD": ("cardinal", "CARDINAL"), "ORD": ("ordinal", "ORDINAL"),
}

TEMPLATES = {
    "news": """
{PER}, the {NORP} finance minister, said on {DATE} that inflation had fallen to {PCT}.
Officials in {CITY} said {CARD} people were evacuated after the {LOC} burst its banks.
{ORG} will cut {CARD} jobs in {COUNTRY} by {DATE}, chief executive {PER} told staff.
The deal values {ORG} at {MONEY}, according to people familiar with the talks.
{PER} was elected mayor of {CITY} with {PCT} of the vote.
Talks between {COUNTRY} and {COUNTRY} resumed in {CITY} on {DATE}.
A spokesperson for {ORG} declined to comment on the report by {ORG}.
{ORG} shares rose {PCT} in early trading after the company beat forecasts.
The storm brought {QTY} of rain to parts of {STATEGPE} in less than {TIME}.
Police in {CITY} said {CARD} men had been arrested after the raid.
{PER} resigned as chair of {ORG} after {DATE} of criticism.
The {ORD} round of negotiations ended without agreement, {NORP} diplomats said.
Investigators from {ORG} arrived at {FAC} {TIME} to examine the wreckage.
Under the {LAW}, companies must report breaches within {TIME}.
Voters in {GPE} go to the polls on {DATE} for the {ORD} time in {DATE}.
{PER}, who founded {ORG} in {DATE}, will step down {DATE}.
Prices for wheat in {GPE} have risen by {PCT} since {DATE}.
The ministry said {CARD} soldiers were killed near {CITY} {DATE}.
{ORG} reported revenue of {MONEY} for {DATE}, up from {MONEY} a year earlier.
Rescue teams reached the village in the {LOC} after a search lasting {TIME}.
The {EVENT} drew {CARD} visitors to {CITY} {DATE}.
According to {ORG}, {CARD} {NORP} citizens live in {GPE}.
{PER} told {ORG} that the plan would cost {MONEY} over {DATE}.
The flight from {CITY} to {CITY} was diverted to {FAC} at {TIME}.
Students at {ORG} protested against tuition fees on {DATE}.
Lawmakers in {GPE} approved the bill by {CARD} votes to {CARD}.
Temperatures in {CITY} reached {QTY} on {DATE}, the highest since {DATE}.
{PER} and {PER} met in {CITY} to discuss trade with {COUNTRY}.
Firefighters battled the blaze at {FAC} for {TIME} before it was brought under control.
{NORP} officials said the border with {COUNTRY} would reopen {DATE}.
""",
    "music": """
{PER} recorded {WORK} in {CITY} in {DATE}.
The {BAND} will release their {ORD} album, {WORK}, on {DATE}.
{PER} conducted the {ORG} in a performance of {WORK} at {FAC}.
{PER}'s {WORK} was first performed in {CITY} in {DATE}.
Tickets for {PER}'s show at {FAC} on {DATE} sold out in {TIME}.
{PER} painted {WORK} while living in {CITY}.
The exhibition at {FAC} brings together {CARD} works by {PER}.
{PER} signed with {ORG} in {DATE} and moved to {CITY}.
{PER} headlines the {EVENT} in {CITY} this {SEASON}.
The {ORG} opens its season with {PER}'s {WORK} on {DATE}.
{PER} wrote {WORK} after a long stay in {GPE}.
{PER} sings in {LANG} and {LANG} on the new record.
The novel {WORK} by {PER} has been translated into {CARD} languages.
{PER} won the {ORD} prize at the {EVENT} with a performance of {WORK}.
The {BAND} played {CARD} songs in {TIME} at {FAC} {DATE}.
{PER}'s portrait of {PER} sold for {MONEY} at auction in {CITY}.
{PER} was born in {CITY} in {DATE} and studied at {ORG}.
Director {PER} is filming {WORK} in {GPE} with {PER} in the lead role.
{PER}, a {NORP} pianist, made her debut with the {ORG} in {DATE}.
{WORK} topped the charts in {GPE} for {DATE}.
{PER} and {PER} formed {BAND} in {CITY} in {DATE}.
The festival in {CITY} will feature {PER}, {PER} and the {BAND}.
{PER} spent {DATE} composing {WORK} in a cabin near the {LOC}.
The {BAND}'s {WORK} was recorded at {FAC} over {DATE}.
{PER} directed {WORK}, which premiered at the {EVENT} in {DATE}.
Listen to {PER}'s new single {WORK} on {ORG} now.
""",
    "review": """
I bought the {PRODUCT} {DATE} and it already feels slow.
The {PRODUCT} is light, fast and worth every penny at {MONEY}.
We stayed at the {ORG} in {CITY} for {DATE}; the room was tiny but spotless.
Dinner at {ORG} in {CITY} cost {MONEY} for {CARD} people and the service was rude.
{WORK} is {TIME} long and {PER} carries every minute of it.
{PER}'s {WORK} is the best book I have read {DATE}.
My {PRODUCT} stopped charging after {DATE} and {ORG} refused to replace it.
Flew {ORG} from {CITY} to {CITY}: the flight was delayed by {TIME}.
The tour guide in {CITY}, {FN}, was funny and knew everything about the {LOC}.
Ordered a sofa from {ORG} on {DATE}; it arrived {DATE} late with a broken leg.
Compared to the {PRODUCT}, the {PRODUCT} has a much better screen.
The hike up {LOC} took {TIME} and the view was unforgettable.
{WORK}, directed by {PER}, is beautiful to look at but painfully slow.
Battery life on the {PRODUCT} is about {TIME} with the screen on.
The museum at {FAC} was free on {DATE} and not too crowded.
We paid {MONEY} for parking near {FAC}, which is outrageous.
The {PRODUCT} does {QTY} on a full charge in summer.
{FN} at the front desk of the {ORG} sorted out our booking in {TIME}.
Five stars for {ORG}: the courier delivered {TIME} early.
The audiobook of {WORK}, read by {PER}, is a joy.
I've used {ORG} for {DATE} and never had a problem until now.
The cafe next to {FAC} serves the best coffee in {CITY}.
{WORK} is a clever, warm film and {PER} is wonderful in it.
Do not buy the {PRODUCT}: mine overheated within {TIME}.
The {ORG} app crashed {CARD} times while I tried to book a table.
""",
    "social": """
just saw {PER} at {FAC} omg {EMOJI}
can't believe {ORG} lost to {ORG} again {EMOJI}
happy birthday {FN}!! see you in {CITY} {TIME} {EMOJI}
who's going to the {EVENT} {DATE}? {EMOJI}
landed in {CITY} {EMOJI} first stop: food
{PER}'s new album is on repeat {EMOJI}
my {PRODUCT} died again smh {EMOJI}
stuck at {FAC} for {TIME} because of {ORG} {EMOJI}
{ORG} cancelled my favourite show after {CARD} seasons {EMOJI}
shoutout to {FN} for the tickets to {PER} {DATE} {EMOJI}
{PER} with {CARD} points {TIME} {EMOJI} {EMOJI}
anyone know a good bakery in {CITY}?
{FN} and I are finally going to {GPE} {DATE} {EMOJI}
watching {WORK} for the {ORD} time {EMOJI}
{PER} is trending and honestly deserved {EMOJI}
raised {MONEY} for the shelter {DATE} thank you {CITY} {EMOJI}
why is {ORG} down {TIME} {EMOJI}
first day at {ORG} {DATE}, wish me luck {EMOJI}
RT @{HANDLE}: {PER} announces {CARD} new dates in {CITY}
{PER} vs {PER} at the {EVENT} {DATE}, who you got? {EMOJI}
{CITY} weather {DATE} is unreal {EMOJI}
finished {WORK} by {PER} and I'm not ok {EMOJI}
is it just me or did {ORG} raise prices again
{TIME} till {PER} goes on stage in {CITY} {EMOJI}
just got my {PRODUCT}!!! {EMOJI}
""",
}


def synthesise(n: int, rng: random.Random, banned: set[str]) -> list[tuple[str, list[tuple[int, int, str]]]]:
    """``n`` sentences with gold spans, domains in equal shares; some social posts lower-cased whole."""
    slots = Slots(rng, banned)
    templates = {d: [t.strip() for t in body.strip().splitlines() if t.strip()] for d, body in TEMPLATES.items()}
    domains = sorted(templates)
    out = []
    for i in range(n):
        domain = domains[i % len(domains)]
        template = rng.choice(templates[domain])
        text, spans, pos = "", [], 0
        for m in re.finditer(r"\{([A-Z]+)\}", template):
            text += template[pos:m.start()]
            kind = m.group(1)
            if kind == "EMOJI":
                text += rng.choice(EMOJI)
            elif kind == "HANDLE":
                text += rng.choice(["news", "musicdaily", "fan_acc", "gigguide", "popcrave", "hitsradio"])
            elif kind == "SEASON":
                text += rng.choice(["summer", "winter", "spring", "autumn", "weekend"])
            else:
                if kind == "STATEGPE":
                    kind = "GPE"
                method, label = SLOT_TYPES[kind]
                value = getattr(slots, method)()
                if label == "DATE" and value.startswith("the ") and rng.random() < 0.7:
                    text += "the "  # "in the 1990s": "the" stays outside the span, as in the evaluation set
                    value = value[4:]
                start = len(text)
                text += value
                spans.append((start, len(text), label))
            pos = m.end()
        text += template[pos:]
        r = rng.random()
        if domain == "social" and r < 0.2 or r < 0.03:
            cased = text.lower() if r < 0.18 else text.upper()
            if len(cased) == len(text):  # "İ".lower() and "ß".upper() change lengths: keep those as written
                text = cased
        out.append((text, spans))
    return out
