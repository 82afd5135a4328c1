// Runs before Gremlin Server starts, in the server's working directory, with the server's own jars:
//   java -cp "lib/*" groovy.ui.GroovyMain scripts/c360-prepare.groovy c360-run scripts/BytecodeOnlyAuthorizer.groovy
// 1. writes the credentials graph of the SimpleAuthenticator (conf/tinkergraph-credentials.properties points to
//    c360-run/credentials.json): one user from C360_GREMLIN_USERNAME / C360_GREMLIN_PASSWORD, password stored as a
//    BCrypt hash (jBCrypt, as the authenticator checks it; 10 rounds), file mode 0600;
// 2. compiles the authorizer into c360-run/classes (put it on the server's classpath).
// There is no default account: without both variables it stops with exit code 2. The password is never printed.
import java.nio.file.Files
import java.nio.file.attribute.PosixFilePermissions
import org.apache.tinkerpop.gremlin.groovy.jsr223.dsl.credential.CredentialGraphTokens
import org.apache.tinkerpop.gremlin.structure.io.IoCore
import org.apache.tinkerpop.gremlin.tinkergraph.structure.TinkerGraph
import org.codehaus.groovy.control.CompilationUnit
import org.codehaus.groovy.control.CompilerConfiguration
import org.mindrot.jbcrypt.BCrypt

if (args.length != 2) {
    System.err.println('usage: c360-prepare.groovy OUT_DIR AUTHORIZER_SOURCE')
    System.exit(64)
}
def username = System.getenv('C360_GREMLIN_USERNAME')
def password = System.getenv('C360_GREMLIN_PASSWORD')
if (!username?.trim() || !password) {
    System.err.println('Gremlin Server credentials are not set: set C360_GREMLIN_USERNAME and C360_GREMLIN_PASSWORD ' +
                       '(there is no default account)')
    System.exit(2)
}
def out = new File(args[0])
out.mkdirs()
def privateFile = { File f ->
    f.delete()
    Files.createFile(f.toPath(), PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString('rw-------')))
}

def credentials = TinkerGraph.open()
credentials.traversal().addV(CredentialGraphTokens.VERTEX_LABEL_USER)  // the layout of the credential DSL's user()
        .property(CredentialGraphTokens.PROPERTY_USERNAME, username)
        .property(CredentialGraphTokens.PROPERTY_PASSWORD, BCrypt.hashpw(password, BCrypt.gensalt(10))).iterate()
def db = new File(out, 'credentials.json')
privateFile(db)
credentials.io(IoCore.graphson()).writeGraph(db.path)
credentials.close()

def classes = new File(out, 'classes')
classes.deleteDir()
classes.mkdirs()
def unit = new CompilationUnit(new CompilerConfiguration(targetDirectory: classes))
unit.addSource(new File(args[1]))
unit.compile()
