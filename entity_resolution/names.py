"""Small built-in name, street, city and company lists for the insurance data generator (no network)."""

FIRST_NAMES_M = ("James John Robert Michael William David Richard Joseph Thomas Charles Christopher Daniel Matthew "
                 "Anthony Mark Donald Steven Paul Andrew Joshua Kenneth Kevin Brian George Timothy Ronald Edward "
                 "Jason Jeffrey Ryan Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin Scott Brandon Benjamin "
                 "Samuel Gregory Alexander Frank Patrick Raymond Jack Dennis Jerry Tyler Aaron Jose Adam Nathan "
                 "Henry Douglas Zachary Peter Kyle Walter Ethan Jeremy Harold Keith Christian Roger Noah Gerald Carl "
                 "Terry Sean Austin Arthur Lawrence Jesse Dylan Bryan Joe Jordan Billy Bruce Albert Willie Gabriel "
                 "Logan Alan Juan Wayne Roy Ralph Randy Eugene Vincent Russell Elijah Louis Bobby Philip Johnny").split()
FIRST_NAMES_F = ("Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy Betty Margaret "
                 "Sandra Ashley Kimberly Emily Donna Michelle Carol Amanda Dorothy Melissa Deborah Stephanie Rebecca "
                 "Sharon Laura Cynthia Kathleen Amy Angela Shirley Anna Brenda Pamela Emma Nicole Helen Samantha "
                 "Katherine Christine Debra Rachel Carolyn Janet Catherine Maria Heather Diane Ruth Julie Olivia "
                 "Joyce Virginia Victoria Kelly Lauren Christina Joan Evelyn Judith Megan Andrea Cheryl Hannah "
                 "Jacqueline Martha Gloria Teresa Ann Sara Madison Frances Kathryn Janice Jean Abigail Alice Judy "
                 "Sophia Grace Denise Amber Doris Marilyn Danielle Beverly Isabella Theresa Diana Natalie Brittany "
                 "Charlotte Marie Kayla Alexis Lori").split()
NICKNAMES = {
    "James": "Jim", "John": "Jack", "Robert": "Bob", "Michael": "Mike", "William": "Bill", "David": "Dave",
    "Richard": "Rick", "Joseph": "Joe", "Thomas": "Tom", "Charles": "Chuck", "Christopher": "Chris",
    "Daniel": "Dan", "Matthew": "Matt", "Anthony": "Tony", "Donald": "Don", "Steven": "Steve",
    "Andrew": "Andy", "Joshua": "Josh", "Kenneth": "Ken", "Timothy": "Tim", "Ronald": "Ron", "Edward": "Ed",
    "Jeffrey": "Jeff", "Nicholas": "Nick", "Jonathan": "Jon", "Benjamin": "Ben", "Samuel": "Sam",
    "Gregory": "Greg", "Alexander": "Alex", "Patrick": "Pat", "Raymond": "Ray", "Gerald": "Jerry",
    "Lawrence": "Larry", "Zachary": "Zach", "Elizabeth": "Liz", "Jennifer": "Jen", "Patricia": "Pat",
    "Margaret": "Peggy", "Susan": "Sue", "Jessica": "Jess", "Kimberly": "Kim", "Deborah": "Deb",
    "Rebecca": "Becky", "Katherine": "Kate", "Christine": "Chris", "Victoria": "Vicky", "Cynthia": "Cindy",
    "Kathleen": "Kathy", "Pamela": "Pam", "Samantha": "Sam", "Abigail": "Abby", "Dorothy": "Dot",
    "Barbara": "Barb", "Jacqueline": "Jackie", "Judith": "Judy", "Theresa": "Tess", "Alexis": "Lexi",
}
LAST_NAMES = ("Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez "
              "Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark "
              "Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams "
              "Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker "
              "Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper "
              "Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James "
              "Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster "
              "Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes Gonzales Fisher "
              "Vasquez Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds Griffin Wallace Moreno "
              "West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall "
              "Owens Harrison Fernandez McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb "
              "Tucker Guzman Burns Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason "
              "Dixon Munoz Hunt Hicks Holmes Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox Warren "
              "Mills Meyer Rice Schmidt Garza Daniels Ferguson Nichols Stephens Soto Weaver Ryan Gardner Payne "
              "Grant Dunn Kelley Spencer Hawkins Arnold Pierce Vazquez Hansen Peters Santos Hart Bradley Knight "
              "Elliott Cunningham Duncan Armstrong Hudson Carroll Lane Riley Andrews Alvarado Ray Delgado Berry "
              "Perkins Hoffman Johnston Matthews Pena Richards Contreras Willis Carpenter Lawrence Sandoval").split()
STREETS = ("Main Oak Pine Maple Cedar Elm Washington Lake Hill Park Walnut Sunset Lincoln Jackson Church River "
           "Highland Willow Spring Center Chestnut Franklin Adams Jefferson Madison Forest Meadow Ridge Valley "
           "Cherry Dogwood Hickory Birch Magnolia Lakeview Broad Union Liberty Water Mill Bridge Market Front "
           "Prospect Cottage Summit Orchard Grove Spruce Poplar Laurel Fairview Woodland Greenwood Academy "
           "Railroad Harbor Bay Shore Canyon Mesa Desert Pinecrest Holly Aspen Juniper Sycamore").split()
STREET_TYPES = ["St", "Ave", "Rd", "Dr", "Ln", "Blvd", "Ct", "Way", "Pl", "Ter"]
CITIES = [("Seattle", "WA", "98"), ("Portland", "OR", "97"), ("San Diego", "CA", "92"), ("Sacramento", "CA", "95"),
          ("Phoenix", "AZ", "85"), ("Denver", "CO", "80"), ("Austin", "TX", "78"), ("Dallas", "TX", "75"),
          ("Houston", "TX", "77"), ("Chicago", "IL", "60"), ("Columbus", "OH", "43"), ("Atlanta", "GA", "30"),
          ("Miami", "FL", "33"), ("Orlando", "FL", "32"), ("Charlotte", "NC", "28"), ("Nashville", "TN", "37"),
          ("Boston", "MA", "02"), ("Newark", "NJ", "07"), ("Buffalo", "NY", "14"), ("Albany", "NY", "12"),
          ("Pittsburgh", "PA", "15"), ("Baltimore", "MD", "21"), ("Richmond", "VA", "23"), ("Detroit", "MI", "48"),
          ("Minneapolis", "MN", "55"), ("Milwaukee", "WI", "53"), ("Omaha", "NE", "68"), ("Boise", "ID", "83"),
          ("Salt Lake City", "UT", "84"), ("Las Vegas", "NV", "89"), ("Albuquerque", "NM", "87"),
          ("Tulsa", "OK", "74"), ("Louisville", "KY", "40"), ("Indianapolis", "IN", "46"), ("Kansas City", "MO", "64"),
          ("Birmingham", "AL", "35"), ("Jackson", "MS", "39"), ("Little Rock", "AR", "72"), ("Des Moines", "IA", "50"),
          ("Hartford", "CT", "06")]
COMPANIES = ("Acme Corp|Globex|Initech|Umbrella Health|Stark Industries|Wayne Enterprises|Hooli|Vandelay Industries|"
             "Cyberdyne Systems|Soylent Foods|Wonka Confections|Tyrell Corp|Massive Dynamic|Pied Piper|"
             "Gringotts Bank|Oceanic Airlines|Monarch Logistics|Blue Sun Retail|Northwind Traders|Contoso|"
             "Fabrikam|Litware|Adventure Works|Tailspin Toys|Proseware|Wide World Importers|Lakeshore Clinic|"
             "City School District|County Hospital|State University|Self-employed").split("|")
JOBS = ("Engineer|Teacher|Nurse|Accountant|Sales Manager|Electrician|Driver|Analyst|Physician|Lawyer|Chef|"
        "Mechanic|Clerk|Designer|Pharmacist|Consultant|Technician|Retired|Student|Carpenter").split("|")
INDUSTRIES = ("Technology|Healthcare|Education|Finance|Retail|Manufacturing|Transportation|Government|"
              "Hospitality|Construction").split("|")
MAKES_MODELS = [("Toyota", "Camry"), ("Toyota", "Corolla"), ("Toyota", "RAV4"), ("Honda", "Civic"),
                ("Honda", "Accord"), ("Honda", "CR-V"), ("Ford", "F-150"), ("Ford", "Escape"), ("Ford", "Explorer"),
                ("Chevrolet", "Silverado"), ("Chevrolet", "Malibu"), ("Chevrolet", "Equinox"), ("Nissan", "Altima"),
                ("Nissan", "Rogue"), ("Subaru", "Outback"), ("Subaru", "Forester"), ("Tesla", "Model 3"),
                ("Jeep", "Wrangler"), ("Hyundai", "Elantra"), ("Kia", "Sorento"), ("BMW", "X3"), ("Mazda", "CX-5")]
COLORS = ["White", "Black", "Silver", "Gray", "Blue", "Red", "Green", "Brown"]
PROPERTY_TYPES = ["single_family", "condo", "townhouse", "multi_family", "mobile_home"]
