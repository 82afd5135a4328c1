// Authorizer of the c360 Gremlin Server (compiled at server start by scripts/c360-prepare.groovy).
// Gremlin Server ships the Authorizer interface only; this one lets authenticated users send bytecode
// traversals on the configured traversal sources and refuses everything that would reach a script engine:
// string scripts (eval, sessions) and lambdas anywhere in a traversal. It also refuses g.io(), which
// reads and writes files on the server.
package c360.gremlin

import groovy.transform.CompileStatic
import org.apache.tinkerpop.gremlin.process.traversal.Bytecode
import org.apache.tinkerpop.gremlin.server.auth.AuthenticatedUser
import org.apache.tinkerpop.gremlin.server.authz.AuthorizationException
import org.apache.tinkerpop.gremlin.server.authz.Authorizer
import org.apache.tinkerpop.gremlin.util.function.Lambda
import org.apache.tinkerpop.gremlin.util.message.RequestMessage

@CompileStatic
class BytecodeOnlyAuthorizer implements Authorizer {
    static final String REJECT_STRING = 'string scripts are disabled on this server: send bytecode traversals'
    static final Set<String> DENIED_STEPS = ['io'] as Set<String>

    private Set<String> sources = ['g'] as Set<String>

    @Override
    void setup(Map<String, Object> config) throws AuthorizationException {
        Object configured = config?.get('traversalSources')
        if (configured instanceof Collection)
            sources = ((Collection) configured).collect { it.toString() } as Set<String>
    }

    @Override
    Bytecode authorize(AuthenticatedUser user, Bytecode bytecode, Map<String, String> aliases) throws AuthorizationException {
        if (user == null || user.isAnonymous())
            throw new AuthorizationException('authentication required')
        Collection<String> requested = aliases == null ? Collections.<String>emptyList() : aliases.values()
        if (requested.isEmpty() || !sources.containsAll(requested))
            throw new AuthorizationException("traversal source not allowed: ${requested}".toString())
        check(bytecode)
        return bytecode
    }

    @Override
    void authorize(AuthenticatedUser user, RequestMessage msg) throws AuthorizationException {
        throw new AuthorizationException(REJECT_STRING)
    }

    private static void check(Bytecode bytecode) {
        for (Bytecode.Instruction i : bytecode.getSourceInstructions() + bytecode.getStepInstructions()) {
            if (DENIED_STEPS.contains(i.getOperator()))
                throw new AuthorizationException("step not allowed: ${i.getOperator()}".toString())
            for (Object arg : i.getArguments())
                checkArgument(arg)
        }
    }

    private static void checkArgument(Object arg) {
        if (arg instanceof Lambda)
            throw new AuthorizationException('lambdas are disabled on this server')
        if (arg instanceof Bytecode) check((Bytecode) arg)
        else if (arg instanceof Bytecode.Binding) checkArgument(((Bytecode.Binding) arg).value())
        else if (arg instanceof Map) ((Map) arg).each { k, v -> checkArgument(k); checkArgument(v) }
        else if (arg instanceof Iterable) ((Iterable) arg).each { checkArgument(it) }
        else if (arg instanceof Object[]) ((Object[]) arg).each { checkArgument(it) }
    }
}
